package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ProcCost is what a set of processes had used so far: CPU time (user and
// system, all threads) and bytes sent to the storage layer (write_bytes of
// /proc/<pid>/io: what the page cache will write to disk, fsynced or not).
// A step's difference, divided by its operations, is a cost per operation
// that does not depend on how much of the machine other jobs take: on a
// shared machine rates swing by tens of percent from step to step, the cost
// per operation much less (issue 14).
type ProcCost struct {
	CPU        time.Duration
	WriteBytes int64
	// IOKnown is false when some process's /proc/<pid>/io could not be
	// read (another user's process); WriteBytes is then not reported.
	IOKnown bool
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go supports.
const userHZ = 100

// ReadProcCost sums the CPU time and write_bytes of pids (Linux /proc).
func ReadProcCost(pids []int) (ProcCost, error) {
	c := ProcCost{IOKnown: true}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return c, fmt.Errorf("bench: CPU time of process %d: %w", pid, err)
		}
		ticks, err := parseStatCPU(b)
		if err != nil {
			return c, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
		}
		c.CPU += time.Duration(ticks) * time.Second / userHZ
		io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
		if err != nil {
			c.IOKnown = false
			continue
		}
		wb, ok := parseIOWriteBytes(io)
		if !ok {
			c.IOKnown = false
			continue
		}
		c.WriteBytes += wb
	}
	return c, nil
}

// parseStatCPU returns utime + stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) may hold spaces and
// parentheses, so the fields are counted from its last ')'.
func parseStatCPU(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", b)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("utime %q, stime %q: not numbers", f[11], f[12])
	}
	return utime + stime, nil
}

// parseIOWriteBytes returns the write_bytes line of /proc/<pid>/io.
func parseIOWriteBytes(b []byte) (int64, bool) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("write_bytes: ")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// ReadMachineBusy returns the CPU time all processors spent on anything but
// idle and I/O wait since boot, from the first line of /proc/stat. A step's
// difference less the CPU of the brokers and the bench is what other jobs
// took meanwhile.
func ReadMachineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("bench: machine CPU time: %w", err)
	}
	ticks, err := parseStatBusy(b)
	if err != nil {
		return 0, fmt.Errorf("bench: /proc/stat: %w", err)
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// parseStatBusy sums user, nice, system, irq, softirq and steal of the
// "cpu" line of /proc/stat (guest time is already inside user and nice).
func parseStatBusy(b []byte) (int64, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("first line %q is not the cpu total", line)
	}
	var sum int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		v, err := strconv.ParseInt(string(f[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("field %d %q: not a number", i, f[i])
		}
		sum += v
	}
	return sum, nil
}
