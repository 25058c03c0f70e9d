package broker

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/snapshot"
	"github.com/raftmq/raftmq/storage"
)

var (
	benchMessages = flag.Int("snapbench.messages", 20000, "messages of 1 KiB produced and consumed by BenchmarkDiskAfterTraffic")
	benchQueued   = flag.Int("snapbench.queued", 1000, "of those, messages left queued at the end")
	benchSnapMB   = flag.Int("snapbench.mb", 100, "snapshot size for BenchmarkInstallSnapshot, in MiB")
)

// BenchmarkDiskAfterTraffic: -snapbench.messages 1 KiB messages produced
// and consumed through a three-node cluster with the default snapshot
// settings; reports each node's data directory against the bytes still
// queued, the log length, and the restart time of a node with that history
// against a fresh node.
func BenchmarkDiskAfterTraffic(b *testing.B) {
	for range b.N {
		benchDiskAfterTraffic(b)
	}
}

func benchDiskAfterTraffic(b *testing.B) {
	cfgs := testCluster(b, 3)
	for i := range cfgs {
		cfgs[i].ElectionTicks = 50
		cfgs[i].RequestTimeout = 30 * time.Second
		cfgs[i].ShutdownTimeout = time.Second
	}
	c := &snapCluster{cfgs: cfgs, nodes: map[int]*running{}, clients: map[int]*rawClient{}}
	start := func(i int) {
		c.nodes[i] = startBroker(b, cfgs[i])
		c.clients[i] = dialRaw(b, cfgs[i].Self().ClientAddr())
	}
	for i := range cfgs {
		start(i)
	}
	lead := leaderOf(b, c.clients)
	c.clients[lead].do(`{"type":"topic","method":"PUT","topic":"q"}`)
	body := strings.Repeat("k", 1024)
	n, queued := *benchMessages, *benchQueued
	began := time.Now()
	const round = 5000
	for done := 0; done < n; done += round {
		k := min(round, n-done)
		pipelineTo(b, cfgs[lead], slices.Repeat([]string{putReq("q", body)}, k))
		pops := k
		if done+k >= n {
			pops -= queued
		}
		pipelineTo(b, cfgs[lead], slices.Repeat([]string{popReq("q")}, pops))
	}
	took := time.Since(began)
	commit := c.clients[lead].status().Commit
	for i := range cfgs {
		testwait.For(b, 60*time.Second, "apply", func() bool { return c.clients[i].status().Applied >= commit })
	}
	for i := range cfgs {
		testwait.For(b, 60*time.Second, fmt.Sprintf("node %d to finish its snapshot", i), func() bool {
			return !c.clients[i].status().SnapshotInProgress
		})
	}
	var maxDir int64
	for i := range cfgs {
		st := c.clients[i].status()
		d := dirBytes(b, cfgs[i].DataDir)
		maxDir = max(maxDir, d)
		b.Logf("node %d: dir %d bytes (raft.db %d, state.db %d, snapshots %d), log %d..%d (%d entries), snapshot %d",
			i, d, fileSize(filepath.Join(cfgs[i].DataDir, "raft.db")), fileSize(filepath.Join(cfgs[i].DataDir, "state.db")),
			dirBytes(b, filepath.Join(cfgs[i].DataDir, "snapshots")), st.FirstIndex, st.LastIndex, st.LastIndex-st.FirstIndex+1, st.Snapshot)
	}
	queuedBytes := int64(queued) * 1024
	b.Logf("%d messages of 1 KiB produced and consumed in %s (%.0f entries/s); %d queued = %d bytes", n, took, float64(2*n-queued)/took.Seconds(), queued, queuedBytes)
	b.ReportMetric(float64(maxDir), "max-dir-bytes")
	b.ReportMetric(float64(queuedBytes), "queued-bytes")

	// Restart: a node with this history against a fresh one.
	f := (lead + 1) % 3
	c.nodes[f].stop(b)
	t0 := time.Now()
	start(f)
	testwait.For(b, 60*time.Second, "restarted node applies", func() bool { return c.clients[f].status().Applied >= commit })
	restart := time.Since(t0)
	fresh := cfgs[0]
	fresh.Cluster = config.Cluster{Addresses: cfgs[0].Cluster.Addresses[:1]}
	fresh.DataDir = b.TempDir()
	t0 = time.Now()
	fb, err := New(fresh, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	freshOpen := time.Since(t0)
	fb.closeStores()
	b.Logf("restart with history: %s to serve the commit index again; fresh node open: %s", restart, freshOpen)
	b.ReportMetric(float64(restart.Milliseconds()), "restart-ms")
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// BenchmarkInstallSnapshot: a -snapbench.mb MiB snapshot (a real state.db
// of 1 KiB messages) streamed over two ZeroMQ peer transports in 1 MiB
// chunks, verified, written out and swapped in as a follower's state.db.
func BenchmarkInstallSnapshot(b *testing.B) {
	dir := b.TempDir()
	leaderState, err := storage.OpenStateDB(filepath.Join(dir, "leader.db"), storage.StateOptions{MaxSessions: 10})
	if err != nil {
		b.Fatal(err)
	}
	msgs := *benchSnapMB * 1024
	var ents []raftlog.Entry
	ents = append(ents, raftlog.Entry{Index: 1, Term: 1, Type: raftlog.EntryNormal, Data: storage.EncodeCommand(storage.Command{Op: storage.OpCreateTopic, Topic: "q"})})
	body := strings.Repeat("i", 1024)
	for i := 0; i < msgs; i++ {
		ents = append(ents, raftlog.Entry{Index: uint64(i + 2), Term: 1, Type: raftlog.EntryNormal, Data: storage.EncodeCommand(storage.Command{Op: storage.OpPut, Topic: "q", Message: body})})
		if len(ents) == 5000 {
			if _, err := leaderState.Apply(ents); err != nil {
				b.Fatal(err)
			}
			ents = ents[:0]
		}
	}
	if _, err := leaderState.Apply(ents); err != nil {
		b.Fatal(err)
	}
	leaderStore, _ := snapshot.Open(filepath.Join(dir, "leader-snaps"), "c", 2)
	cp := filepath.Join(dir, "compact")
	applied, err := leaderState.CopyCompact(context.Background(), cp)
	if err != nil {
		b.Fatal(err)
	}
	f, _ := os.Open(cp)
	meta, err := leaderStore.Create(snapshot.Meta{Index: applied, Term: 1, Voters: []uint64{1, 2}}, func(w io.Writer) (int64, error) { return io.Copy(w, f) })
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("snapshot of %d messages: %d bytes", msgs, meta.Size)
	zctx, _ := zmq.NewContext()
	ports := freePorts(b, 2)
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	t1, err := newZMQTransport(zctx, "c", 1, "tcp://"+addr(ports[0]), map[uint64]string{2: addr(ports[1])}, peerLimits{}, nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer t1.Close()
	t2, err := newZMQTransport(zctx, "c", 2, "tcp://"+addr(ports[1]), map[uint64]string{1: addr(ports[0])}, peerLimits{}, nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer t2.Close()
	testwait.For(b, 10*time.Second, "the peer link to carry a message", func() bool {
		t1.Send([]raftlog.Message{{Type: raftlog.MsgHeartbeat, From: 1, To: 2, Term: 1}})
		select {
		case <-t2.Recv():
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	b.ResetTimer()
	for i := range b.N {
		fdir := filepath.Join(dir, fmt.Sprint("f", i))
		os.MkdirAll(fdir, 0o755)
		fstore, _ := snapshot.Open(filepath.Join(fdir, "snaps"), "c", 2)
		fstate, err := storage.OpenStateDB(filepath.Join(fdir, "state.db"), storage.StateOptions{MaxSessions: 10})
		if err != nil {
			b.Fatal(err)
		}
		installCh := make(chan pendingInstall, 1)
		stop := make(chan struct{})
		rcv := &snapReceiver{store: fstore, trans: t2, clusterID: "c", self: 2, dataDir: fdir, log: zerolog.Nop(), installCh: installCh}
		go rcv.run(stop)
		s := &snapSender{peer: 2, msg: raftlog.Message{Type: raftlog.MsgSnap, From: 1, To: 2, Term: 1, Snapshot: meta.Raft()},
			meta: meta, ackCh: make(chan snapAck, 64), stop: make(chan struct{})}
		go func() {
			for {
				select {
				case a := <-t1.Acks():
					s.ackCh <- a
				case <-stop:
					return
				}
			}
		}()
		t0 := time.Now()
		okCh := make(chan bool, 1)
		go func() {
			okCh <- s.run(leaderStore, t1, "c", 1, config.Default().SnapshotChunkBytes, snapTiming{resendAfter: 500 * time.Millisecond, giveUpAfter: time.Minute}, zerolog.Nop())
		}()
		in := <-installCh
		received := time.Since(t0)
		if err := fstate.Replace(in.path); err != nil {
			b.Fatal(err)
		}
		total := time.Since(t0)
		if !<-okCh || fstate.AppliedIndex() != applied {
			b.Fatalf("transfer failed or applied %d != %d", fstate.AppliedIndex(), applied)
		}
		close(stop)
		fstate.Close()
		b.Logf("%d MiB snapshot: received, verified and written out in %s, installed (swap) at %s: %.0f MB/s", meta.Size>>20, received, total, float64(meta.Size)/total.Seconds()/1e6)
		b.ReportMetric(total.Seconds(), "install-s")
	}
}

// BenchmarkPutDuringSnapshot: pipelined put throughput of a three-node
// cluster holding ~20 MB of queued messages, with snapshots taken back to
// back on every node, against none.
func BenchmarkPutDuringSnapshot(b *testing.B) {
	cfgs := testCluster(b, 3)
	for i := range cfgs {
		cfgs[i].ElectionTicks = 50
		cfgs[i].RequestTimeout = 30 * time.Second
		cfgs[i].ShutdownTimeout = time.Second
		cfgs[i].SnapshotEntries = config.MaxSnapshotEntries // only the admin request snapshots
	}
	clients := map[int]*rawClient{}
	for i := range cfgs {
		startBroker(b, cfgs[i])
		clients[i] = dialRaw(b, cfgs[i].Self().ClientAddr())
	}
	lead := leaderOf(b, clients)
	clients[lead].do(`{"type":"topic","method":"PUT","topic":"q"}`)
	body := strings.Repeat("d", 1024)
	pipelineTo(b, cfgs[lead], slices.Repeat([]string{putReq("q", body)}, 20000))
	measure := func(snapshotting bool) float64 {
		stop := make(chan struct{})
		done := make(chan int)
		if snapshotting {
			for i := range cfgs {
				go func() {
					c := dialRaw(b, cfgs[i].Self().ClientAddr())
					n := 0
					for {
						select {
						case <-stop:
							done <- n
							return
						default:
						}
						c.do(snapshotReq)
						n++
					}
				}()
			}
		}
		const k = 5000
		t0 := time.Now()
		pipelineTo(b, cfgs[lead], slices.Repeat([]string{putReq("q", body)}, k))
		rate := k / time.Since(t0).Seconds()
		close(stop)
		if snapshotting {
			snaps := 0
			for range cfgs {
				snaps += <-done
			}
			b.Logf("with snapshots back to back (%d taken): %.0f puts/s", snaps, rate)
		} else {
			b.Logf("without snapshots: %.0f puts/s", rate)
		}
		return rate
	}
	for range b.N {
		without := measure(false)
		with := measure(true)
		b.ReportMetric(without, "puts/s-idle")
		b.ReportMetric(with, "puts/s-snapshotting")
	}
}
