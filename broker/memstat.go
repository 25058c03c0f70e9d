package broker

import (
	"bytes"
	"os"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"
)

// heapMetric is the Go heap's objects, live or not yet swept: what
// runtime.MemStats calls HeapAlloc, read without stopping the world.
const heapMetric = "/memory/classes/heap/objects:bytes"

// heapBytes returns the Go heap in use.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// anonRSSInterval is how old the anonymous RSS in a published status may
// be. Reading /proc/self/status costs about 0.1 ms (BenchmarkAnonRSSBytes);
// the status is published every tick (50 ms) on every node, and the deep
// benchmarks sample the process themselves every 100 ms.
const anonRSSInterval = time.Second

var anonRSS struct {
	mu    sync.Mutex
	at    time.Time
	bytes uint64
}

// recentAnonRSSBytes is anonRSSBytes read at most once an anonRSSInterval
// (per process: it is the process's figure).
func recentAnonRSSBytes(now time.Time) uint64 {
	anonRSS.mu.Lock()
	defer anonRSS.mu.Unlock()
	if anonRSS.at.IsZero() || now.Sub(anonRSS.at) >= anonRSSInterval || now.Before(anonRSS.at) {
		anonRSS.at, anonRSS.bytes = now, anonRSSBytes()
	}
	return anonRSS.bytes
}

// anonRSSBytes returns this process's anonymous resident memory from
// /proc/self/status (Linux), 0 where that is not available.
func anonRSSBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return parseRssAnon(b)
}

// parseRssAnon reads the "RssAnon:  1234 kB" line; 0 if there is none.
func parseRssAnon(status []byte) uint64 {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("RssAnon:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}
