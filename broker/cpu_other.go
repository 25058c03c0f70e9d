//go:build !unix

package broker

// processCPUMicros is unknown on this platform.
func processCPUMicros() uint64 { return 0 }
