package broker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/client/bench"
	"github.com/raftmq/raftmq/internal/testwait"
)

// BenchmarkFsync is the baseline: the raw fdatasync rate of the benchmark's
// temp directory, measured in the same run as BenchmarkPut.
func BenchmarkFsync(b *testing.B) {
	res, err := bench.MeasureFsync(b.TempDir(), b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.PerSec, "fsyncs/s")
}

// BenchmarkPut measures one node's put path with 1 and 32 concurrent
// clients and 256-byte messages: throughput, p50/p99 latency and messages
// per raft.db fsync (group commit).
func BenchmarkPut(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			cfg := testCluster(b, 1)[0]
			cfg.TickInterval = 50 * time.Millisecond
			r := startBroker(b, cfg)
			addr := cfg.Self().ClientAddr()
			testwait.For(b, 15*time.Second, "leader", func() bool { return r.b.Status().Role == "Leader" })
			ctx := context.Background()
			setup, err := client.New(client.Options{Servers: []string{addr}})
			if err != nil {
				b.Fatal(err)
			}
			defer setup.Close()
			if _, err := setup.CreateTopic(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
			msg := strings.Repeat("x", 256)
			lat := make([][]time.Duration, clients)
			syncs0, entries0 := r.b.stats.logSyncs.Load(), r.b.stats.logEntries.Load()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := 0; w < clients; w++ {
				n := b.N / clients
				if w < b.N%clients {
					n++
				}
				wg.Add(1)
				go func(w, n int) {
					defer wg.Done()
					c, err := client.New(client.Options{Servers: []string{addr}})
					if err != nil {
						b.Error(err)
						return
					}
					defer c.Close()
					for i := 0; i < n; i++ {
						start := time.Now()
						if ok, err := c.Put(ctx, "bench", msg); err != nil || !ok {
							b.Errorf("put: %v %v", ok, err)
							return
						}
						lat[w] = append(lat[w], time.Since(start))
					}
				}(w, n)
			}
			wg.Wait()
			b.StopTimer()
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l...)
			}
			if len(all) == 0 {
				return
			}
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			syncs := r.b.stats.logSyncs.Load() - syncs0
			entries := r.b.stats.logEntries.Load() - entries0
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			if syncs > 0 {
				b.ReportMetric(float64(entries)/float64(syncs), "entries/fsync")
			}
		})
	}
}
