package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to maxLatencyMicros,
// with 3 significant digits.
const (
	maxLatencyMicros = int64(10 * time.Minute / time.Microsecond)
	latencySigFigs   = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, maxLatencyMicros, latencySigFigs)
}

func record(h *hdrhistogram.Histogram, d time.Duration) {
	us := min(max(d.Microseconds(), 1), maxLatencyMicros)
	if err := h.RecordValue(us); err != nil {
		panic(fmt.Sprintf("bench: record %d µs in [1, %d]: %v", us, maxLatencyMicros, err))
	}
}

// Counters are a leader's status counters at one moment, and the CPU time
// of every server that answered.
type Counters struct {
	Server     string `json:"server"`
	Term       uint64 `json:"term"`
	LogSyncs   uint64 `json:"log_syncs"`
	LogEntries uint64 `json:"log_entries"`
	// CPUMicros is the sum of cpu_us over the CPUServers servers that
	// answered status.
	CPUMicros  uint64 `json:"cpu_us"`
	CPUServers int    `json:"cpu_servers"`
}

// Result is one run at one client count.
type Result struct {
	Clients    int           `json:"clients"`
	Puts       int64         `json:"puts"`
	Errors     int64         `json:"errors"`
	FirstError string        `json:"first_error,omitempty"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	PutsPerSec float64       `json:"puts_per_sec"`
	P50        time.Duration `json:"p50_ns"`
	P99        time.Duration `json:"p99_ns"`
	Max        time.Duration `json:"max_ns"`
	// From the leader's counters before and after; SyncsKnown is false when
	// the leader changed (or restarted) during the run or no sync happened.
	SyncsKnown     bool    `json:"syncs_known"`
	LogSyncs       uint64  `json:"log_syncs"`
	LogEntries     uint64  `json:"log_entries"`
	PutsPerSync    float64 `json:"puts_per_sync"`
	EntriesPerSync float64 `json:"entries_per_sync"`
	SyncsPerSec    float64 `json:"syncs_per_sec"`
	// CPUPerPut is the CPU time all servers together spent per put (µs);
	// CPUKnown is false when a server did not answer before or after.
	CPUKnown  bool    `json:"cpu_known"`
	CPUPerPut float64 `json:"cpu_us_per_put"`
	// PutsPerRawFsync is PutsPerSec divided by the probe's fsyncs per second:
	// above 1, batching beats one fsync per put.
	PutsPerRawFsync float64 `json:"puts_per_raw_fsync"`
}

// Report is a whole bench run.
type Report struct {
	SizeBytes int      `json:"size_bytes"`
	Topic     string   `json:"topic"`
	Fsync     Fsync    `json:"fsync"`
	Results   []Result `json:"results"`
}

// summarize turns one run's measurements into a Result. before/after are
// nil when unknown.
func summarize(clients int, h *hdrhistogram.Histogram, errs int64, elapsed time.Duration, before, after *Counters, fsyncPerSec float64) Result {
	r := Result{Clients: clients, Puts: h.TotalCount(), Errors: errs, Elapsed: elapsed}
	if elapsed > 0 {
		r.PutsPerSec = float64(r.Puts) / elapsed.Seconds()
	}
	if r.Puts > 0 {
		r.P50 = time.Duration(h.ValueAtQuantile(50)) * time.Microsecond
		r.P99 = time.Duration(h.ValueAtQuantile(99)) * time.Microsecond
		r.Max = time.Duration(h.Max()) * time.Microsecond
	}
	if before != nil && after != nil && before.Server == after.Server && before.Term == after.Term &&
		after.LogSyncs > before.LogSyncs && after.LogEntries >= before.LogEntries {
		r.SyncsKnown = true
		r.LogSyncs = after.LogSyncs - before.LogSyncs
		r.LogEntries = after.LogEntries - before.LogEntries
		r.PutsPerSync = float64(r.Puts) / float64(r.LogSyncs)
		r.EntriesPerSync = float64(r.LogEntries) / float64(r.LogSyncs)
		if elapsed > 0 {
			r.SyncsPerSec = float64(r.LogSyncs) / elapsed.Seconds()
		}
	}
	if before != nil && after != nil && before.CPUServers > 0 && before.CPUServers == after.CPUServers &&
		after.CPUMicros >= before.CPUMicros && r.Puts > 0 {
		r.CPUKnown = true
		r.CPUPerPut = float64(after.CPUMicros-before.CPUMicros) / float64(r.Puts)
	}
	if fsyncPerSec > 0 {
		r.PutsPerRawFsync = r.PutsPerSec / fsyncPerSec
	}
	return r
}

// WriteText prints the report as aligned plain text.
func (r Report) WriteText(w io.Writer) error {
	f := r.Fsync
	if _, err := fmt.Fprintf(w, "fsync probe: %d x %d B fdatasync in %s: %.0f fsyncs/s (mean %s)\n",
		f.Count, FsyncBlockBytes, f.Dir, f.PerSec, f.Mean.Round(time.Microsecond)); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "puts of %d B to topic %q\n\n", r.SizeBytes, r.Topic); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tputs\terrors\tputs/s\tp50\tp99\tmax\tlog commits\tcommits/s\tputs/commit\tentries/commit\tcpu µs/put\tputs/s ÷ fsyncs/s\t")
	for _, x := range r.Results {
		syncs, sps, pps, eps, cpu := "n/a", "n/a", "n/a", "n/a", "n/a"
		if x.SyncsKnown {
			syncs = fmt.Sprint(x.LogSyncs)
			sps = fmt.Sprintf("%.0f", x.SyncsPerSec)
			pps = fmt.Sprintf("%.2f", x.PutsPerSync)
			eps = fmt.Sprintf("%.2f", x.EntriesPerSync)
		}
		if x.CPUKnown {
			cpu = fmt.Sprintf("%.0f", x.CPUPerPut)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t\n",
			x.Clients, x.Puts, x.Errors, x.PutsPerSec, ms(x.P50), ms(x.P99), ms(x.Max), syncs, sps, pps, eps, cpu, x.PutsPerRawFsync)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range r.Results {
		if x.FirstError != "" {
			if _, err := fmt.Fprintf(w, "clients=%d: %d errors, first: %s\n", x.Clients, x.Errors, x.FirstError); err != nil {
				return err
			}
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
