package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func near(got, want, relTol float64) bool {
	return math.Abs(got-want) <= relTol*math.Abs(want)
}

func TestSummarize(t *testing.T) {
	// 100 puts taking 1ms..100ms over 2s.
	h := newHistogram()
	for i := 1; i <= 100; i++ {
		record(h, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		name          string
		before, after *Counters
		fsyncPerSec   float64
		known         bool
		syncs         uint64
		putsPerSync   float64
		entPerSync    float64
		perRawFsync   float64
	}{
		{"counters", &Counters{"A", 3, 10, 100, 0, 0}, &Counters{"A", 3, 35, 210, 0, 0}, 25, true, 25, 4, 4.4, 2},
		{"leader changed", &Counters{"A", 3, 10, 100, 0, 0}, &Counters{"B", 4, 35, 210, 0, 0}, 25, false, 0, 0, 0, 2},
		{"same server new term", &Counters{"A", 3, 10, 100, 0, 0}, &Counters{"A", 5, 35, 210, 0, 0}, 25, false, 0, 0, 0, 2},
		{"restarted: counters went back", &Counters{"A", 3, 10, 100, 0, 0}, &Counters{"A", 3, 2, 5, 0, 0}, 25, false, 0, 0, 0, 2},
		{"no sync happened", &Counters{"A", 3, 10, 100, 0, 0}, &Counters{"A", 3, 10, 100, 0, 0}, 25, false, 0, 0, 0, 2},
		{"no leader before", nil, &Counters{"A", 3, 10, 100, 0, 0}, 0, false, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := summarize(4, h, 2, 2*time.Second, tt.before, tt.after, tt.fsyncPerSec)
			if r.Clients != 4 || r.Puts != 100 || r.Errors != 2 || r.PutsPerSec != 50 {
				t.Errorf("clients %d puts %d errors %d puts/s %v; want 4 100 2 50", r.Clients, r.Puts, r.Errors, r.PutsPerSec)
			}
			// HDR with 3 significant digits: within 0.1%.
			for _, q := range []struct {
				name      string
				got, want time.Duration
			}{{"p50", r.P50, 50 * time.Millisecond}, {"p99", r.P99, 99 * time.Millisecond}, {"max", r.Max, 100 * time.Millisecond}} {
				if !near(float64(q.got), float64(q.want), 0.001) {
					t.Errorf("%s = %v, want %v ±0.1%%", q.name, q.got, q.want)
				}
			}
			if r.SyncsKnown != tt.known || r.LogSyncs != tt.syncs || r.PutsPerSync != tt.putsPerSync ||
				!near(r.EntriesPerSync, tt.entPerSync, 1e-9) || r.PutsPerRawFsync != tt.perRawFsync {
				t.Errorf("syncs (%v %d %v %v %v), want (%v %d %v %v %v)", r.SyncsKnown, r.LogSyncs, r.PutsPerSync, r.EntriesPerSync, r.PutsPerRawFsync,
					tt.known, tt.syncs, tt.putsPerSync, tt.entPerSync, tt.perRawFsync)
			}
		})
	}
}

func TestSummarizeCPUAndRate(t *testing.T) {
	h := newHistogram()
	for i := 0; i < 100; i++ {
		record(h, time.Millisecond)
	}
	r := summarize(4, h, 0, 2*time.Second, &Counters{"A", 3, 10, 100, 1000, 3}, &Counters{"A", 3, 60, 300, 31000, 3}, 0)
	if !r.CPUKnown || r.CPUPerPut != 300 || r.SyncsPerSec != 25 {
		t.Fatalf("cpu known %v µs/put %v syncs/s %v; want true 300 25", r.CPUKnown, r.CPUPerPut, r.SyncsPerSec)
	}
	r = summarize(4, h, 0, 2*time.Second, &Counters{"A", 3, 10, 100, 1000, 3}, &Counters{"A", 3, 60, 300, 31000, 2}, 0)
	if r.CPUKnown {
		t.Fatalf("a server missing after the run: cpu known %v, want false", r.CPUKnown)
	}
}

func TestSummarizeEmpty(t *testing.T) {
	r := summarize(1, newHistogram(), 5, 0, nil, nil, 100)
	if r.Puts != 0 || r.PutsPerSec != 0 || r.P50 != 0 || r.P99 != 0 || r.PutsPerRawFsync != 0 || r.Errors != 5 {
		t.Fatalf("empty run = %+v; want zeros and 5 errors", r)
	}
}

func TestRecordClamps(t *testing.T) {
	h := newHistogram()
	record(h, 0)
	record(h, time.Hour)
	if h.TotalCount() != 2 || h.Min() != 1 || h.Max() < maxLatencyMicros*999/1000 {
		t.Fatalf("count %d min %d max %d; want 2 values clamped to [1, %d]", h.TotalCount(), h.Min(), h.Max(), maxLatencyMicros)
	}
}

func TestFsyncResult(t *testing.T) {
	tests := []struct {
		count   int
		elapsed time.Duration
		perSec  float64
		mean    time.Duration
	}{
		{200, time.Second, 200, 5 * time.Millisecond},
		{50, 250 * time.Millisecond, 200, 5 * time.Millisecond},
		{10, 0, 0, 0},
	}
	for _, tt := range tests {
		r := fsyncResult(tt.count, tt.elapsed)
		if r.Count != tt.count || r.PerSec != tt.perSec || r.Mean != tt.mean {
			t.Errorf("fsyncResult(%d, %v) = %+v; want %v/s mean %v", tt.count, tt.elapsed, r, tt.perSec, tt.mean)
		}
	}
}

func TestWriteText(t *testing.T) {
	rep := Report{SizeBytes: 256, Topic: "bench",
		Fsync: Fsync{Dir: "/d", Count: 200, PerSec: 400, Mean: 2500 * time.Microsecond},
		Results: []Result{
			{Clients: 1, Puts: 1000, PutsPerSec: 350, P50: 2800 * time.Microsecond, P99: 5 * time.Millisecond, SyncsKnown: true, LogSyncs: 1000, LogEntries: 1000, PutsPerSync: 1, EntriesPerSync: 1, SyncsPerSec: 350, CPUKnown: true, CPUPerPut: 123, PutsPerRawFsync: 0.875},
			{Clients: 32, Puts: 9000, Errors: 1, FirstError: "boom", PutsPerSec: 3000, PutsPerRawFsync: 7.5},
		}}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"400 fsyncs/s", "mean 2.5ms", `256 B to topic "bench"`, "puts/s ÷ fsyncs/s", "commits/s", "cpu µs/put", "123", "2.80ms", "0.88", "n/a", "7.50", "clients=32: 1 errors, first: boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(out, "\n")
	var table []string
	for _, l := range lines {
		if strings.Contains(l, "clients") && strings.Contains(l, "puts") || strings.HasPrefix(strings.TrimSpace(l), "1 ") || strings.HasPrefix(strings.TrimSpace(l), "32 ") {
			table = append(table, l)
		}
	}
	if len(table) != 3 || utf8.RuneCountInString(table[0]) != len(table[1]) || len(table[1]) != len(table[2]) {
		t.Errorf("table rows not aligned:\n%s", strings.Join(table, "\n"))
	}
}
