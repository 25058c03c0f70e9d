package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/raftmq/raftmq/client/bench"
	"github.com/raftmq/raftmq/internal/proccluster"
)

// BenchmarkFailover measures, with the default timing options, the time
// from SIGKILL of the leader to a new leader that a majority follows. Each
// iteration is one trial; run it with -benchtime 20x for 20 trials.
func BenchmarkFailover(b *testing.B) {
	for _, n := range []int{3, 5} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			c, err := proccluster.NewCluster(bin, b.TempDir(), proccluster.Options{Nodes: n})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if err := c.StartAll(); err != nil {
				b.Fatal(err)
			}
			var took []time.Duration
			for i := 0; i < b.N; i++ {
				old, _, err := c.WaitLeader(10 * time.Second)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := c.Kill(old); err != nil {
					b.Fatal(err)
				}
				lead, _, err := c.WaitLeader(10 * time.Second)
				if err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
				if lead == old {
					b.Fatalf("killed node %d reported as leader", old)
				}
				if err := c.Start(old); err != nil {
					b.Fatal(err)
				}
			}
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "median-ms")
			b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "worst-ms")
		})
	}
}

// BenchmarkClusterPut runs the bench runner against a 3-node cluster (default
// timing) with 1 and 32 producers, and checks the leader kept its term
// throughout: sustained load must not cause spurious elections.
func BenchmarkClusterPut(b *testing.B) {
	c, err := proccluster.NewCluster(bin, b.TempDir(), proccluster.Options{Nodes: 3})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.StartAll(); err != nil {
		b.Fatal(err)
	}
	_, term, err := c.WaitLeader(10 * time.Second)
	if err != nil {
		b.Fatal(err)
	}
	fs, err := bench.MeasureFsync(c.Dir, 500)
	if err != nil {
		b.Fatal(err)
	}
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			cfg := bench.Config{
				Clients:    []int{clients},
				SizeBytes:  256,
				Messages:   max(b.N, clients),
				Topic:      "bench",
				FsyncDir:   c.Dir,
				FsyncCount: 1,
				Seed:       1,
			}
			cfg.Client.Servers = c.ClientAddrs()
			rep, err := bench.Run(context.Background(), cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			r := rep.Results[0]
			b.ReportMetric(fs.PerSec, "raw-fsyncs/s")
			b.ReportMetric(r.PutsPerSec, "puts/s")
			b.ReportMetric(float64(r.P50)/1e6, "p50-ms")
			b.ReportMetric(float64(r.P99)/1e6, "p99-ms")
			if r.SyncsKnown {
				b.ReportMetric(r.PutsPerSync, "puts/fsync")
			}
			if os.Getenv("RAFTMQ_BENCH_REPORT") != "" {
				rep.WriteText(os.Stdout)
			}
		})
	}
	_, after, err := c.WaitLeader(10 * time.Second)
	if err != nil {
		b.Fatal(err)
	}
	if after != term {
		b.Fatalf("term changed under load from %d to %d: spurious election", term, after)
	}
}
