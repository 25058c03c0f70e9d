//go:build unix

package broker

import "syscall"

// processCPUMicros is the CPU time (user + system) this process has used,
// in µs; 0 if unknown.
func processCPUMicros() uint64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	us := ru.Utime.Nano()/1000 + ru.Stime.Nano()/1000
	return uint64(max(us, 0))
}
