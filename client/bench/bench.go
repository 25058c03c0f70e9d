// Package bench is the runner behind `raftmq bench`: put throughput and
// latency at several client counts, messages per fsync from the leader's
// status counters, and the raw fsync rate of a directory measured in the
// same run.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/raftmq/raftmq/client"
)

// Limits on a bench run.
const (
	MaxClients   = 1024
	MaxSizeBytes = 64 << 20
)

// Config describes a bench run. Client.Servers is required; each worker gets
// its own Client (its own session) built from Client with ClientID cleared.
type Config struct {
	Client     client.Options
	Clients    []int         // worker counts, one run each, e.g. [1, 32]
	SizeBytes  int           // bytes per message
	Messages   int           // puts per run (all workers together); 0 = run for Duration
	Duration   time.Duration // per run, when Messages is 0
	Topic      string        // created when missing
	FsyncDir   string        // directory for the fsync probe
	FsyncCount int           // syncs in the probe
	Seed       uint64        // payload bytes and retry jitter
}

// Validate checks the bounds of a Config.
func (c Config) Validate() error {
	var errs []error
	if len(c.Clients) == 0 {
		errs = append(errs, errors.New("bench: clients: give at least one client count"))
	}
	for _, n := range c.Clients {
		if n < 1 || n > MaxClients {
			errs = append(errs, fmt.Errorf("bench: clients: %d is not in 1..%d", n, MaxClients))
		}
	}
	if c.SizeBytes < 0 || c.SizeBytes > MaxSizeBytes {
		errs = append(errs, fmt.Errorf("bench: size %d is not in 0..%d bytes", c.SizeBytes, MaxSizeBytes))
	}
	if c.Messages < 0 || (c.Messages == 0 && c.Duration <= 0) {
		errs = append(errs, errors.New("bench: give a positive message count or duration"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("bench: topic must not be empty"))
	}
	if c.FsyncCount <= 0 {
		errs = append(errs, fmt.Errorf("bench: fsync count %d must be positive", c.FsyncCount))
	}
	return errors.Join(errs...)
}

// Run measures the fsync rate of cfg.FsyncDir, creates the topic if needed,
// then runs one timed put run per client count. progress, when not nil, is
// called after each run.
func Run(ctx context.Context, cfg Config, progress func(Result)) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	rep := Report{SizeBytes: cfg.SizeBytes, Topic: cfg.Topic}
	fs, err := MeasureFsync(cfg.FsyncDir, cfg.FsyncCount)
	if err != nil {
		return rep, err
	}
	rep.Fsync = fs

	admin, err := client.New(workerOptions(cfg, 0))
	if err != nil {
		return rep, err
	}
	defer admin.Close()
	if _, err := admin.CreateTopic(ctx, cfg.Topic); err != nil {
		return rep, fmt.Errorf("bench: %w", err)
	}
	payload := makePayload(cfg.SizeBytes, cfg.Seed)
	for _, n := range cfg.Clients {
		before := leaderCounters(ctx, admin)
		st, err := runOnce(ctx, cfg, n, payload)
		if err != nil {
			return rep, err
		}
		after := leaderCounters(ctx, admin)
		res := summarize(n, st.hist, st.errs, st.elapsed, before, after, fs.PerSec)
		if st.first != nil {
			res.FirstError = st.first.Error()
		}
		rep.Results = append(rep.Results, res)
		if progress != nil {
			progress(res)
		}
	}
	return rep, nil
}

func workerOptions(cfg Config, worker int) client.Options {
	o := cfg.Client
	o.ClientID = ""
	o.Rand = rand.New(rand.NewPCG(cfg.Seed, uint64(worker)))
	return o
}

// makePayload returns size printable bytes (no JSON escaping needed).
func makePayload(size int, seed uint64) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, size)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// leaderCounters returns the counters of the one node that says it leads,
// nil when none (or several) do.
func leaderCounters(ctx context.Context, c *client.Client) *Counters {
	all, err := c.StatusAll(ctx)
	if err != nil {
		return nil
	}
	var found *Counters
	var cpu uint64
	servers := 0
	for _, n := range all {
		if n.Err == nil {
			cpu += n.Status.CPUMicros
			servers++
		}
	}
	for _, n := range all {
		if n.Err != nil || n.Status.Role != "Leader" {
			continue
		}
		if found != nil && found.Term == n.Status.Term {
			return nil
		}
		if found == nil || n.Status.Term > found.Term {
			found = &Counters{Server: n.Server, Term: n.Status.Term, LogSyncs: n.Status.LogSyncs, LogEntries: n.Status.LogEntries}
		}
	}
	if found != nil {
		found.CPUMicros, found.CPUServers = cpu, servers
	}
	return found
}

// runStats are one run's raw measurements.
type runStats struct {
	hist    *hdrhistogram.Histogram // put latencies, µs
	errs    int64
	first   error // the first error seen, nil if none
	elapsed time.Duration
}

// runOnce runs n workers, each with its own connected Client, until the
// message budget is spent or the duration is over.
func runOnce(ctx context.Context, cfg Config, n int, payload string) (runStats, error) {
	workers := make([]*client.Client, n)
	defer func() {
		for _, c := range workers {
			if c != nil {
				c.Close()
			}
		}
	}()
	// Connect and find the leader before the clock starts.
	for i := range workers {
		c, err := client.New(workerOptions(cfg, i+1))
		if err != nil {
			return runStats{}, err
		}
		workers[i] = c
		if _, err := c.ListTopics(ctx); err != nil {
			return runStats{}, fmt.Errorf("bench: worker %d: %w", i, err)
		}
	}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if cfg.Messages == 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	}
	defer cancel()
	budget := atomic.Int64{}
	budget.Store(int64(cfg.Messages))

	hists := make([]*hdrhistogram.Histogram, n)
	errCounts := make([]int64, n)
	firsts := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range workers {
		hists[i] = newHistogram()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				if cfg.Messages > 0 && budget.Add(-1) < 0 {
					return
				}
				t0 := time.Now()
				ok, err := c.Put(runCtx, cfg.Topic, payload)
				took := time.Since(t0)
				switch {
				case err != nil && cfg.Messages == 0 && runOver(runCtx):
					return // cut short by the end of the run
				case err != nil:
					errCounts[i]++
					if firsts[i] == nil {
						firsts[i] = err
					}
				case !ok:
					errCounts[i]++
					if firsts[i] == nil {
						firsts[i] = fmt.Errorf("bench: topic %q does not exist (deleted during the run?)", cfg.Topic)
					}
				default:
					record(hists[i], took)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	st := runStats{hist: newHistogram(), elapsed: elapsed}
	for i := range hists {
		st.hist.Merge(hists[i])
		st.errs += errCounts[i]
		if st.first == nil {
			st.first = firsts[i]
		}
	}
	if err := ctx.Err(); err != nil {
		return runStats{}, fmt.Errorf("bench: interrupted: %w", err)
	}
	return st, nil
}

// runOver reports whether ctx's deadline has passed (ctx.Err() can lag it).
func runOver(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() != nil || (ok && !time.Now().Before(dl))
}
