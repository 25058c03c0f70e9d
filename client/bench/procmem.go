package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// ProcMem is one process's resident memory: RSSBytes in all, AnonBytes of
// it anonymous (heap, stacks: what is not a file's page cache, such as
// bbolt's mmap). In a deep-run step, PeakAnonBytes is the highest
// anonymous RSS sampled during the step.
type ProcMem struct {
	PID           int   `json:"pid"`
	RSSBytes      int64 `json:"rss_bytes"`
	AnonBytes     int64 `json:"anon_bytes"`
	PeakAnonBytes int64 `json:"peak_anon_bytes,omitempty"`
}

// ReadProcMem reads VmRSS and RssAnon from /proc/<pid>/status (Linux).
func ReadProcMem(pid int) (ProcMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcMem{}, fmt.Errorf("bench: memory of process %d: %w", pid, err)
	}
	return parseProcStatus(pid, b)
}

func parseProcStatus(pid int, b []byte) (ProcMem, error) {
	m := ProcMem{PID: pid}
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(key) {
		case "VmRSS":
			dst = &m.RSSBytes
		case "RssAnon":
			dst = &m.AnonBytes
		default:
			continue
		}
		f := bytes.Fields(rest) // "1234 kB"
		if len(f) != 2 || string(f[1]) != "kB" {
			return m, fmt.Errorf("bench: /proc/%d/status: cannot read %q", pid, sc.Text())
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return m, fmt.Errorf("bench: /proc/%d/status: cannot read %q: %w", pid, sc.Text(), err)
		}
		*dst = kb << 10
		found++
	}
	if found != 2 {
		return m, fmt.Errorf("bench: /proc/%d/status has no VmRSS or RssAnon line", pid)
	}
	return m, nil
}
