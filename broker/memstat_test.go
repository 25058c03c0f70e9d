package broker

import (
	"testing"
	"time"
)

func TestParseRssAnon(t *testing.T) {
	tests := []struct {
		name, status string
		want         uint64
	}{
		{"linux", "Name:\traftmq\nVmRSS:\t  51200 kB\nRssAnon:\t   20480 kB\nRssFile:\t 30720 kB\n", 20480 << 10},
		{"missing", "Name:\traftmq\nVmRSS:\t  51200 kB\n", 0},
		{"bad unit", "RssAnon:\t20480 MB\n", 0},
		{"bad number", "RssAnon:\tlots kB\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRssAnon([]byte(tt.status)); got != tt.want {
				t.Fatalf("parseRssAnon = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestHeapBytes(t *testing.T) {
	if heapBytes() == 0 {
		t.Fatalf("heapBytes = 0 in a running program (metric %s unsupported?)", heapMetric)
	}
}

// BenchmarkAnonRSSBytes is the cost of one read of /proc/self/status,
// which the status the node loop publishes each tick needs.
func BenchmarkAnonRSSBytes(b *testing.B) {
	for b.Loop() {
		anonRSSBytes()
	}
}

// TestRecentAnonRSSBytes: the figure is read again only once it is an
// anonRSSInterval old.
func TestRecentAnonRSSBytes(t *testing.T) {
	t0 := time.Now().Add(time.Hour) // after anything another test stored
	recentAnonRSSBytes(t0)
	const sentinel = 12345
	anonRSS.mu.Lock()
	anonRSS.bytes = sentinel
	anonRSS.mu.Unlock()
	if got := recentAnonRSSBytes(t0.Add(anonRSSInterval / 2)); got != sentinel {
		t.Fatalf("within the interval: %d, want the stored %d", got, sentinel)
	}
	if got := recentAnonRSSBytes(t0.Add(anonRSSInterval)); got == sentinel {
		t.Fatalf("after the interval: still the stored %d, want a fresh read", got)
	}
}
