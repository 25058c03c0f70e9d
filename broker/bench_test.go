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

// BenchmarkPut measures the put path of one node and of an in-process
// three-node cluster with 1 and 32 concurrent clients and 256-byte
// messages: throughput, p50/p99 latency, entries per raft.db commit on
// the leader and the process's CPU per put (nodes and clients). With -cpuprofile it profiles every node of the cluster (they
// share the process).
func BenchmarkPut(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, clients := range []int{1, 32} {
			b.Run(fmt.Sprintf("nodes=%d/clients=%d", nodes, clients), func(b *testing.B) { benchPut(b, nodes, clients) })
		}
	}
}

func benchPut(b *testing.B, nodes, clients int) {
	cfgs := testCluster(b, nodes)
	var rs []*running
	var addrs []string
	for _, cfg := range cfgs {
		cfg.TickInterval = 50 * time.Millisecond
		rs = append(rs, startBroker(b, cfg))
		addrs = append(addrs, cfg.Self().ClientAddr())
	}
	var leader *running
	testwait.For(b, 15*time.Second, "leader", func() bool {
		for _, r := range rs {
			if r.b.Status().Role == "Leader" {
				leader = r
				return true
			}
		}
		return false
	})
	ctx := context.Background()
	setup, err := client.New(client.Options{Servers: addrs})
	if err != nil {
		b.Fatal(err)
	}
	defer setup.Close()
	if _, err := setup.CreateTopic(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	msg := strings.Repeat("x", 256)
	lat := make([][]time.Duration, clients)
	syncs0, entries0 := leader.b.stats.logSyncs.Load(), leader.b.stats.logEntries.Load()
	cpu0 := processCPUMicros()
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
			c, err := client.New(client.Options{Servers: addrs})
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
	cpu := processCPUMicros() - cpu0
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	syncs := leader.b.stats.logSyncs.Load() - syncs0
	entries := leader.b.stats.logEntries.Load() - entries0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	// Every node and every client share this process: the CPU of the
	// whole put path, servers and clients together.
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-us/put")
	if syncs > 0 {
		b.ReportMetric(float64(entries)/float64(syncs), "entries/commit")
		b.ReportMetric(float64(syncs)/b.Elapsed().Seconds(), "commits/s")
	}
}
