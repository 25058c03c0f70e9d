package broker

import "testing"

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
