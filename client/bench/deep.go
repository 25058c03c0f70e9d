package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/raftmq/raftmq/client"
)

// DeepConfig describes a deep-queue run: put Messages messages into one
// topic in steps of Step, nothing consumed, measuring each step; pop one
// step at an empty queue first and one at full depth last, so the rates at
// depth read against the rates at an empty queue of the same run.
type DeepConfig struct {
	Client    client.Options
	Clients   int    // workers, each with its own Client
	SizeBytes int    // bytes per message
	Messages  int    // queue depth to reach
	Step      int    // messages per measured step
	Topic     string // must not exist yet: the run creates it
	PIDs      []int  // broker processes whose memory is sampled after each step (Linux /proc)
	Seed      uint64
}

// Validate checks the bounds of a DeepConfig.
func (c DeepConfig) Validate() error {
	var errs []error
	if c.Clients < 1 || c.Clients > MaxClients {
		errs = append(errs, fmt.Errorf("bench: clients: %d is not in 1..%d", c.Clients, MaxClients))
	}
	if c.SizeBytes < 0 || c.SizeBytes > MaxSizeBytes {
		errs = append(errs, fmt.Errorf("bench: size %d is not in 0..%d bytes", c.SizeBytes, MaxSizeBytes))
	}
	if c.Step < 1 {
		errs = append(errs, fmt.Errorf("bench: step %d must be positive", c.Step))
	}
	if c.Messages < c.Step {
		errs = append(errs, fmt.Errorf("bench: messages %d must be at least one step (%d)", c.Messages, c.Step))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("bench: topic must not be empty"))
	}
	return errors.Join(errs...)
}

// Phases of a deep-run step.
const (
	PhasePut = "put"
	PhasePop = "pop"
)

// DeepStep is one measured step.
type DeepStep struct {
	Phase      string        `json:"phase"`       // put or pop
	DepthAfter int           `json:"depth_after"` // messages queued after the step (counted by the bench)
	Ops        int64         `json:"ops"`         // successful puts or pops
	Errors     int64         `json:"errors"`
	FirstError string        `json:"first_error,omitempty"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	PerSec     float64       `json:"per_sec"`
	P99        time.Duration `json:"p99_ns"`
	Procs      []ProcMem     `json:"procs,omitempty"`
	// The step's cost per operation: CPU time of the --pids processes
	// together (brokers: every node's share of a put), of the bench
	// itself, and bytes the --pids processes wrote (write_bytes; absent
	// when /proc/<pid>/io is not readable). Unlike the rate, these do not
	// move with the load other jobs put on the machine.
	BrokerCPUPerOp  time.Duration `json:"broker_cpu_per_op_ns,omitempty"`
	BenchCPUPerOp   time.Duration `json:"bench_cpu_per_op_ns"`
	WriteBytesPerOp float64       `json:"broker_write_bytes_per_op,omitempty"`
	// OtherCores is the CPU other jobs took during the step, in cores
	// (the machine's busy time less the --pids processes' and the
	// bench's, over the step's time): a rate measured while it is high
	// says more about them than about the broker.
	OtherCores float64 `json:"other_cores"`
}

// DeepReport is a whole deep run. The ratios compare the last step of a
// phase (at full depth) with its first (at an empty queue).
type DeepReport struct {
	Clients   int        `json:"clients"`
	SizeBytes int        `json:"size_bytes"`
	Topic     string     `json:"topic"`
	Steps     []DeepStep `json:"steps"`
	PutRatio  float64    `json:"put_ratio"` // put/s at depth ÷ put/s from empty
	PopRatio  float64    `json:"pop_ratio"` // pop/s at depth ÷ pop/s near empty
	// Broker CPU per put (pop) at depth ÷ that on an empty queue: 1 when
	// the depth costs nothing; 1.11 is what a rate ratio of 0.90 would
	// take on a machine with nothing else running.
	PutCPURatio float64 `json:"put_cpu_ratio,omitempty"`
	PopCPURatio float64 `json:"pop_cpu_ratio,omitempty"`
	QueuedBytes int64   `json:"queued_bytes"`   // at full depth
	MaxAnonByte int64   `json:"max_anon_bytes"` // highest anonymous RSS of one process over all steps, peaks included
}

// RunDeep runs the deep-queue benchmark. progress, when not nil, is called
// after each step.
func RunDeep(ctx context.Context, cfg DeepConfig, progress func(DeepStep)) (DeepReport, error) {
	rep := DeepReport{Clients: cfg.Clients, SizeBytes: cfg.SizeBytes, Topic: cfg.Topic}
	if err := cfg.Validate(); err != nil {
		return rep, err
	}
	workers := make([]*client.Client, cfg.Clients)
	defer func() {
		for _, c := range workers {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range workers {
		c, err := client.New(workerOptions(Config{Client: cfg.Client, Seed: cfg.Seed}, i))
		if err != nil {
			return rep, err
		}
		workers[i] = c
	}
	created, err := workers[0].CreateTopic(ctx, cfg.Topic)
	if err != nil {
		return rep, fmt.Errorf("bench: %w", err)
	}
	if !created {
		return rep, fmt.Errorf("bench: topic %q exists: a deep run starts from a new topic (give another --topic)", cfg.Topic)
	}
	payload := makePayload(cfg.SizeBytes, cfg.Seed)
	put := func(ctx context.Context, c *client.Client) (bool, error) { return c.Put(ctx, cfg.Topic, payload) }
	pop := func(ctx context.Context, c *client.Client) (bool, error) {
		_, ok, err := c.Pop(ctx, cfg.Topic)
		return ok, err
	}
	depth := 0
	step := func(phase string, n int) error {
		op := put
		if phase == PhasePop {
			op = pop
		}
		self := []int{os.Getpid()}
		cost0, err := ReadProcCost(cfg.PIDs)
		if err != nil {
			return err
		}
		bench0, benchErr := ReadProcCost(self)
		busy0, busyErr := ReadMachineBusy()
		peaks := samplePeaks(cfg.PIDs, peakSampleEvery)
		st := runOps(ctx, workers, n, op)
		peak := peaks()
		cost1, err := ReadProcCost(cfg.PIDs)
		if err != nil {
			return err
		}
		bench1, benchErr1 := ReadProcCost(self)
		busy1, busyErr1 := ReadMachineBusy()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bench: interrupted: %w", err)
		}
		ops := st.hist.TotalCount()
		if phase == PhasePut {
			depth += int(ops)
		} else {
			depth -= int(ops)
		}
		s := DeepStep{Phase: phase, DepthAfter: depth, Ops: ops, Errors: st.errs, Elapsed: st.elapsed,
			P99: time.Duration(st.hist.ValueAtQuantile(99)) * time.Microsecond}
		if st.first != nil {
			s.FirstError = st.first.Error()
		}
		if st.elapsed > 0 {
			s.PerSec = float64(ops) / st.elapsed.Seconds()
		}
		if ops > 0 {
			if len(cfg.PIDs) > 0 {
				s.BrokerCPUPerOp = (cost1.CPU - cost0.CPU) / time.Duration(ops)
				if cost0.IOKnown && cost1.IOKnown {
					s.WriteBytesPerOp = float64(cost1.WriteBytes-cost0.WriteBytes) / float64(ops)
				}
			}
			if benchErr == nil && benchErr1 == nil {
				s.BenchCPUPerOp = (bench1.CPU - bench0.CPU) / time.Duration(ops)
			}
		}
		if benchErr == nil && benchErr1 == nil && busyErr == nil && busyErr1 == nil && st.elapsed > 0 {
			other := (busy1 - busy0) - (cost1.CPU - cost0.CPU) - (bench1.CPU - bench0.CPU)
			s.OtherCores = max(float64(other)/float64(st.elapsed), 0)
		}
		for i, pid := range cfg.PIDs {
			m, err := ReadProcMem(pid)
			if err != nil {
				return err
			}
			m.PeakAnonBytes = max(peak[i], m.AnonBytes)
			s.Procs = append(s.Procs, m)
			rep.MaxAnonByte = max(rep.MaxAnonByte, m.PeakAnonBytes)
		}
		rep.Steps = append(rep.Steps, s)
		if progress != nil {
			progress(s)
		}
		return nil
	}
	// The empty-queue reference: one step in, the same step out.
	if err := step(PhasePut, cfg.Step); err != nil {
		return rep, err
	}
	if err := step(PhasePop, depth); err != nil {
		return rep, err
	}
	for depth < cfg.Messages {
		if err := step(PhasePut, min(cfg.Step, cfg.Messages-depth)); err != nil {
			return rep, err
		}
	}
	rep.QueuedBytes = int64(depth) * int64(cfg.SizeBytes)
	if err := step(PhasePop, cfg.Step); err != nil {
		return rep, err
	}
	rep.PutRatio = ratio(rep.Steps, PhasePut)
	rep.PopRatio = ratio(rep.Steps, PhasePop)
	rep.PutCPURatio = cpuRatio(rep.Steps, PhasePut)
	rep.PopCPURatio = cpuRatio(rep.Steps, PhasePop)
	return rep, nil
}

// ratio divides the rate of phase's last step by that of its first.
func ratio(steps []DeepStep, phase string) float64 {
	var first, last float64
	for _, s := range steps {
		if s.Phase != phase {
			continue
		}
		if first == 0 {
			first = s.PerSec
		}
		last = s.PerSec
	}
	if first == 0 {
		return 0
	}
	return last / first
}

// runOps runs op n times over the workers (one op in flight each) and
// returns latencies and errors. A false result (no such topic, or empty) is
// an error: a deep run never expects one.
func runOps(ctx context.Context, workers []*client.Client, n int, op func(context.Context, *client.Client) (bool, error)) runStats {
	var budget atomic.Int64
	budget.Store(int64(n))
	hists := make([]*hdrhistogram.Histogram, len(workers))
	errCounts := make([]int64, len(workers))
	firsts := make([]error, len(workers))
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range workers {
		hists[i] = newHistogram()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && budget.Add(-1) >= 0 {
				t0 := time.Now()
				ok, err := op(ctx, c)
				switch {
				case err == nil && !ok:
					err = errors.New("bench: the request answered success=false (topic missing or empty)")
					fallthrough
				case err != nil:
					errCounts[i]++
					if firsts[i] == nil {
						firsts[i] = err
					}
				default:
					record(hists[i], time.Since(t0))
				}
			}
		}()
	}
	wg.Wait()
	st := runStats{hist: newHistogram(), elapsed: time.Since(start)}
	for i := range hists {
		st.hist.Merge(hists[i])
		st.errs += errCounts[i]
		if st.first == nil {
			st.first = firsts[i]
		}
	}
	return st
}

// cpuRatio divides the broker CPU per op of phase's last step by that of
// its first; 0 when either is unknown.
func cpuRatio(steps []DeepStep, phase string) float64 {
	var first, last time.Duration
	seen := false
	for _, s := range steps {
		if s.Phase != phase {
			continue
		}
		if !seen {
			first, seen = s.BrokerCPUPerOp, true
		}
		last = s.BrokerCPUPerOp
	}
	if first == 0 || last == 0 {
		return 0
	}
	return float64(last) / float64(first)
}

// WriteText prints the report as aligned plain text.
func (r DeepReport) WriteText(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "deep queue: %d clients, %d B messages, topic %q\n\n", r.Clients, r.SizeBytes, r.Topic); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tdepth after\tops\terrors\tops/s\tp99\tRSS MB\tanon MB\tpeak anon MB\tbroker CPU µs/op\tbroker write B/op\tbench CPU µs/op\tother cores\t")
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.2f\t\n", s.Phase, s.DepthAfter, s.Ops, s.Errors, s.PerSec, ms(s.P99),
			mbList(s.Procs, func(p ProcMem) int64 { return p.RSSBytes }), mbList(s.Procs, func(p ProcMem) int64 { return p.AnonBytes }),
			mbList(s.Procs, func(p ProcMem) int64 { return p.PeakAnonBytes }), usOrDash(s.BrokerCPUPerOp), numOrDash(s.WriteBytesPerOp),
			float64(s.BenchCPUPerOp)/float64(time.Microsecond), s.OtherCores)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nat depth ÷ empty: put %.2f, pop %.2f; queued %.1f MB; highest anon RSS of one process (sampled every 100 ms) %.1f MB\n",
		r.PutRatio, r.PopRatio, mb(r.QueuedBytes), mb(r.MaxAnonByte))
	if err != nil {
		return err
	}
	if r.PutCPURatio > 0 || r.PopCPURatio > 0 {
		if _, err := fmt.Fprintf(w, "broker CPU per op at depth ÷ empty (1 = the depth costs nothing): put %.2f, pop %.2f\n", r.PutCPURatio, r.PopCPURatio); err != nil {
			return err
		}
	}
	for _, s := range r.Steps {
		if s.FirstError != "" {
			if _, err := fmt.Fprintf(w, "%s to depth %d: %d errors, first: %s\n", s.Phase, s.DepthAfter, s.Errors, s.FirstError); err != nil {
				return err
			}
		}
	}
	return nil
}

func usOrDash(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond))
}

func numOrDash(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// mbList is one value per process, in MB, space-separated.
func mbList(ps []ProcMem, value func(ProcMem) int64) string {
	if len(ps) == 0 {
		return "-"
	}
	out := ""
	for i, p := range ps {
		v := value(p)
		if i > 0 {
			out += " "
		}
		out += fmt.Sprintf("%.0f", mb(v))
	}
	return out
}

// peakSampleEvery is how often a step samples the processes' memory, so
// that a spike (a snapshot written or sent) shows even if it is over by the
// end of the step.
const peakSampleEvery = 100 * time.Millisecond

// samplePeaks samples the anonymous RSS of pids every interval until the
// returned function is called; that returns the highest seen per process
// (0 where no sample was read).
func samplePeaks(pids []int, every time.Duration) func() []int64 {
	peaks := make([]int64, len(pids))
	if len(pids) == 0 {
		return func() []int64 { return peaks }
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			for i, pid := range pids {
				if m, err := ReadProcMem(pid); err == nil {
					peaks[i] = max(peaks[i], m.AnonBytes)
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() []int64 {
		close(stop)
		<-done
		return peaks
	}
}
