package broker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/internal/testwait"
)

// benchCluster starts an in-process cluster of n nodes (default 50 ms
// ticks) and returns the client addresses and the leader.
func benchCluster(b *testing.B, n int) ([]string, *running) {
	b.Helper()
	var rs []*running
	var addrs []string
	for _, cfg := range testCluster(b, n) {
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
	return addrs, leader
}

func benchClient(b *testing.B, addrs []string) *client.Client {
	b.Helper()
	c, err := client.New(client.Options{Servers: addrs})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkConsume compares the two ways to consume, on an in-process
// three-node cluster with 1 and 32 consumers and 256-byte messages: pop
// (one entry per message) and receive+ack (two entries per message, each
// a round trip). The queue is filled before the timer starts; one op is
// one message consumed. Compare msgs/s of the two modes in the same run.
func BenchmarkConsume(b *testing.B) {
	for _, mode := range []string{"pop", "receive+ack"} {
		for _, consumers := range []int{1, 32} {
			b.Run(fmt.Sprintf("mode=%s/consumers=%d", mode, consumers), func(b *testing.B) { benchConsume(b, mode, consumers) })
		}
	}
}

func benchConsume(b *testing.B, mode string, consumers int) {
	addrs, _ := benchCluster(b, 3)
	ctx := context.Background()
	setup := benchClient(b, addrs)
	if _, err := setup.CreateTopic(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	msg := strings.Repeat("x", 256)
	var fill sync.WaitGroup
	for w := 0; w < 32; w++ {
		fill.Add(1)
		go func(w int) {
			defer fill.Done()
			c := benchClient(b, addrs)
			for i := w; i < b.N; i += 32 {
				if ok, err := c.Put(ctx, "bench", msg); err != nil || !ok {
					b.Errorf("put: %v %v", ok, err)
					return
				}
			}
		}(w)
	}
	fill.Wait()
	cs := make([]*client.Client, consumers)
	for i := range cs {
		cs[i] = benchClient(b, addrs)
	}
	lat := make([][]time.Duration, consumers)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < consumers; w++ {
		n := b.N / consumers
		if w < b.N%consumers {
			n++
		}
		wg.Add(1)
		go func(w, n int) {
			defer wg.Done()
			c := cs[w]
			for i := 0; i < n; i++ {
				start := time.Now()
				if mode == "pop" {
					if _, ok, err := c.Pop(ctx, "bench"); err != nil || !ok {
						b.Errorf("pop: %v %v", ok, err)
						return
					}
				} else {
					d, ok, err := c.Receive(ctx, "bench", client.ReceiveOptions{})
					if err != nil || !ok {
						b.Errorf("receive: %v %v", ok, err)
						return
					}
					if err := c.Ack(ctx, "bench", d.Receipt); err != nil {
						b.Errorf("ack: %v", err)
						return
					}
				}
				lat[w] = append(lat[w], time.Since(start))
			}
		}(w, n)
	}
	wg.Wait()
	b.StopTimer()
	reportLatency(b, lat, "msgs/s")
}

func reportLatency(b *testing.B, lat [][]time.Duration, rate string) {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), rate)
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkRedelivery measures the time from a lease's end to the message's
// redelivery, on an in-process three-node cluster with 50 ms ticks: receive
// with a 100 ms lease, then a long-polling receive that the redelivery
// answers. The lease's end is taken as the first receive's answer + 100 ms
// (the leader stamps the lease no later), so the figure is an upper bound.
func BenchmarkRedelivery(b *testing.B) {
	addrs, _ := benchCluster(b, 3)
	ctx := context.Background()
	c := benchClient(b, addrs)
	if _, err := c.CreateTopic(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	const lease = 100 * time.Millisecond
	lat := [][]time.Duration{nil}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ok, err := c.Put(ctx, "bench", "m"); err != nil || !ok {
			b.Fatalf("put: %v %v", ok, err)
		}
		if _, ok, err := c.Receive(ctx, "bench", client.ReceiveOptions{Lease: lease}); err != nil || !ok {
			b.Fatalf("receive: %v %v", ok, err)
		}
		ends := time.Now().Add(lease)
		d, ok, err := c.Receive(ctx, "bench", client.ReceiveOptions{Lease: time.Minute, Wait: 5 * time.Second})
		if err != nil || !ok || d.Deliveries != 2 {
			b.Fatalf("redelivery: %+v %v %v", d, ok, err)
		}
		lat[0] = append(lat[0], time.Since(ends))
		if err := c.Ack(ctx, "bench", d.Receipt); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	all := lat[0]
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(all[len(all)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkIdleLongPoll measures the CPU of this process (one broker and
// its clients, all idle) over one second per op, first with no client,
// then with 1,000 clients, each on its own connection, parked in a
// 20-second RECEIVE on an empty topic. Compare cpu-ms/s of the two in the
// same run: a waiting client must cost no CPU.
func BenchmarkIdleLongPoll(b *testing.B) {
	for _, waiters := range []int{0, 1000} {
		b.Run(fmt.Sprintf("waiters=%d", waiters), func(b *testing.B) { benchIdle(b, waiters) })
	}
}

func benchIdle(b *testing.B, waiters int) {
	addrs, leader := benchCluster(b, 1)
	if _, err := benchClient(b, addrs).CreateTopic(context.Background(), "idle"); err != nil {
		b.Fatal(err)
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		b.Fatal(err)
	}
	if err := zctx.SetMaxSockets(waiters + 64); err != nil {
		b.Fatal(err)
	}
	var socks []*zmq.Socket
	defer func() {
		for _, s := range socks {
			s.Close()
		}
		zctx.Term()
	}()
	for i := 0; i < waiters; i++ {
		s, err := zctx.NewSocket(zmq.DEALER)
		if err != nil {
			b.Fatal(err)
		}
		socks = append(socks, s)
		s.SetLinger(0)
		if err := s.Connect("tcp://" + addrs[0]); err != nil {
			b.Fatal(err)
		}
		if _, err := s.SendBytes([]byte(`{"type":"message","method":"RECEIVE","topic":"idle","wait_ms":20000}`), 0); err != nil {
			b.Fatal(err)
		}
	}
	testwait.For(b, 30*time.Second, fmt.Sprintf("%d waiters parked", waiters), func() bool { return leader.b.Status().Waiting == waiters })
	b.ResetTimer()
	var cpu uint64
	for i := 0; i < b.N; i++ {
		before := processCPUMicros()
		time.Sleep(time.Second) // the measurement window, not a wait for a condition
		cpu += processCPUMicros() - before
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu)/1000/float64(b.N), "cpu-ms/s")
}
