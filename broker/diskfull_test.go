package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/loopfs"
	"github.com/raftmq/raftmq/internal/metricstest"
	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/storage"
)

// diskClient sends raftmq-dialect requests with a session, one seq after
// the other.
type diskClient struct {
	c   *rawClient
	seq int
}

func (d *diskClient) req(typ, method, topic, msg string) map[string]any {
	return d.c.do(d.frame(typ, method, topic, msg))
}

func (d *diskClient) frame(typ, method, topic, msg string) string {
	d.seq++
	body := fmt.Sprintf(`{"client_id":"disk","seq":%d,"type":%q,"method":%q,"topic":%q`, d.seq, typ, method, topic)
	if msg != "" {
		body += fmt.Sprintf(`,"message":%q`, msg)
	}
	return body + "}"
}

// followingClient is a Go client of the whole cluster: it follows the
// leader and retries with one seq, so a multi-node test survives an
// election that a loaded machine causes, without double puts.
func followingClient(t *testing.T, cfgs []config.Node) *client.Client {
	t.Helper()
	var addrs []string
	for _, c := range cfgs {
		addrs = append(addrs, c.Self().ClientAddr())
	}
	cl, err := client.New(client.Options{Servers: addrs, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// slowElections makes elections rare on a loaded machine (300 ms instead
// of 100 ms): the multi-node disk tests check a follower, not elections.
func slowElections(cfgs []config.Node) {
	for i := range cfgs {
		cfgs[i].ElectionTicks = 30
	}
}

// tryReq is req for a broker that may stop meanwhile: nil when no answer
// comes (the REQ socket is then unusable).
func (d *diskClient) tryReq(typ, method, topic, msg string) map[string]any {
	if _, err := d.c.sock.Send(d.frame(typ, method, topic, msg), 0); err != nil {
		return nil
	}
	reply, err := d.c.sock.RecvBytes(0)
	if err != nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(reply, &m); err != nil {
		d.c.t.Fatalf("reply %q: %v", reply, err)
	}
	return m
}

// fillMessage is the i-th test message: its number, then padding.
func fillMessage(i, size int) string {
	head := fmt.Sprintf("m%06d-", i)
	return head + strings.Repeat("x", size-len(head))
}

// TestDiskFullSingleNode fills a one-node broker's small filesystem with
// puts until the guard answers disk_full (never a failed write), then
// drains the queue: every acknowledged message comes back once and in
// order, pops work while the guard is tripped, and once the drain's
// snapshots and compaction give the disk back, puts resume by themselves.
func TestDiskFullSingleNode(t *testing.T) {
	mnt := loopfs.Mount(t, 64<<20)
	cfg := testCluster(t, 1)[0]
	cfg.DataDir = mnt + "/node0"
	cfg.SnapshotEntries = 100
	cfg.TrailingEntries = 10
	startBrokerWith(t, cfg, func(b *Broker) { b.rebuildMinFreeBytes = 256 << 10 })
	d := &diskClient{c: dialRaw(t, cfg.Self().ClientAddr())}
	if resp := d.req("topic", "PUT", "q", ""); resp["success"] != true {
		t.Fatalf("create topic: %v", resp)
	}
	const size = 32 << 10
	var acked []string
	var refused map[string]any
	for i := 0; i < 4000 && refused == nil; i++ {
		m := fillMessage(i, size)
		switch resp := d.req("message", "PUT", "q", m); {
		case resp["success"] == true:
			acked = append(acked, m)
		case resp["error"] == "disk_full":
			refused = resp
		default:
			t.Fatalf("put %d (after %d acknowledged): %v; want success or disk_full", i, len(acked), resp)
		}
	}
	if refused == nil || len(acked) == 0 {
		t.Fatalf("no disk_full after %d puts of %d bytes on a 64 MiB filesystem", len(acked), size)
	}
	t.Logf("disk_full after %d puts: %v", len(acked), refused["detail"])
	if resp := d.req("topic", "PUT", "q2", ""); resp["error"] != "disk_full" {
		t.Errorf("topic creation while full: %v, want disk_full", resp)
	}

	for i, want := range acked {
		resp := d.req("message", "GET", "q", "")
		if resp["success"] != true || resp["message"] != want {
			got, _ := resp["message"].(string)
			t.Fatalf("pop %d of %d: %v %.12q..., want %.12q...", i, len(acked), resp["error"], got, want)
		}
	}
	if resp := d.req("message", "GET", "q", ""); resp["success"] != false || resp["error"] != nil {
		t.Fatalf("pop after the drain: %v, want an empty queue", resp)
	}
	testwait.Err(t, 60*time.Second, "puts to resume after the drain", func() error {
		resp := d.req("message", "PUT", "q", "after")
		if resp["success"] != true {
			return fmt.Errorf("put: %v", resp)
		}
		return nil
	})
}

// TestDiskFullFollower: one follower of three lives on a small filesystem
// that a ballast file fills. It reports disk_full, stops appending, and
// the cluster keeps serving; once the ballast is gone it catches up with
// the leader, and its files open cleanly.
func TestDiskFullFollower(t *testing.T) {
	mnt := loopfs.Mount(t, 32<<20)
	cfgs := testCluster(t, 3)
	clients := map[int]*rawClient{}
	runs := make([]*running, 3)
	for i := range cfgs {
		clients[i] = dialRaw(t, cfgs[i].Self().ClientAddr())
	}
	lead0 := -1
	slowElections(cfgs)
	for i := range cfgs {
		runs[i] = startBroker(t, cfgs[i])
	}
	lead0 = leaderOf(t, clients)
	full := (lead0 + 1) % 3
	// Restart the chosen follower on the small filesystem, empty: it
	// rejoins from the leader (a fresh node, so --recover).
	runs[full].stop(t)
	cfgs[full].DataDir = mnt + "/node"
	cfgs[full].Recover = true
	cfgs[full].MetricsListen = "127.0.0.1:0"
	runs[full] = startBroker(t, cfgs[full])

	cl := followingClient(t, cfgs)
	ctx := context.Background()
	if ok, err := cl.CreateTopic(ctx, "q"); err != nil || !ok {
		t.Fatalf("create topic: %v %v", ok, err)
	}
	testwait.For(t, 10*time.Second, "the follower to catch up before its disk fills", func() bool {
		return clients[full].status().Applied >= clients[lead0].status().Commit
	})
	ballast := loopfs.Fill(t, mnt, 512<<10) // below the guard: 5% of 32 MiB
	testwait.For(t, 5*time.Second, "the follower to report disk_full", func() bool { return clients[full].status().DiskFull })
	stuck := clients[full].status().LastIndex

	var acked []string
	for i := 0; i < 50; i++ {
		m := fillMessage(i, 1024)
		if ok, err := cl.Put(ctx, "q", m); err != nil || !ok {
			t.Fatalf("put %d with one follower out of space: %v %v", i, ok, err)
		}
		acked = append(acked, m)
	}
	st := clients[full].status()
	if st.LastIndex != stuck || !st.DiskFull || st.AppendsDropped == 0 {
		t.Fatalf("full follower: last index %d (was %d), disk_full %v, appends dropped %d; want it to append nothing",
			st.LastIndex, stuck, st.DiskFull, st.AppendsDropped)
	}
	if v, _ := metricstest.Scrape(t, runs[full].b.MetricsAddr()).Value("raftmq_disk_full"); v != 1 {
		t.Errorf("full follower's raftmq_disk_full = %v, want 1", v)
	}
	if st.Role == "Leader" {
		t.Fatalf("the full follower leads: %+v", st)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	testwait.Err(t, 20*time.Second, "the follower to catch up once space is back", func() error {
		fs, ls := clients[full].status(), clients[lead0].status()
		if fs.DiskFull || fs.Applied < ls.Commit {
			return fmt.Errorf("follower disk_full %v applied %d, leader commit %d", fs.DiskFull, fs.Applied, ls.Commit)
		}
		return nil
	})
	for i, want := range acked {
		if m, ok, err := cl.Pop(ctx, "q"); err != nil || !ok || m != want {
			t.Fatalf("pop %d: %.40q %v %v", i, m, ok, err)
		}
	}
	runs[full].stop(t)
	rep, err := storage.Inspect(cfgs[full].DataDir)
	if err != nil || !rep.OK() {
		t.Fatalf("the follower's files after the fill: %v %+v", err, rep)
	}
}

// TestDiskFullENOSPC: with the guard off, puts run the filesystem out of
// space for real. The node stops at its first failed write, its files
// open cleanly, and Serve reopens it from them once space is back: every
// acknowledged message is still there, once and in order.
func TestDiskFullENOSPC(t *testing.T) {
	mnt := loopfs.Mount(t, 48<<20)
	cfg := testCluster(t, 1)[0]
	cfg.DataDir = mnt + "/node0"
	cfg.MinFreeBytes = 0 // no guard: meet ENOSPC itself
	cfg.SnapshotEntries = 1_000_000
	cfg.TrailingEntries = 0
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	ballast := loopfs.Fill(t, mnt, 20<<20) // keep 20 MiB to write into
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, cfg, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return within 10s of its context ending")
		}
	})
	c := dialRaw(t, cfg.Self().ClientAddr())
	c.sock.SetRcvtimeo(3 * time.Second)
	d := &diskClient{c: c}
	if resp := d.req("topic", "PUT", "q", ""); resp["success"] != true {
		t.Fatalf("create topic: %v", resp)
	}
	const size = 64 << 10
	var acked []string
	failed := false
	for i := 0; i < 2000 && !failed; i++ {
		m := fillMessage(i, size)
		switch resp := d.tryReq("message", "PUT", "q", m); {
		case resp == nil:
			failed = true // no answer: the node stopped, the outcome is unknown
		case resp["success"] == true:
			acked = append(acked, m)
		case resp["error"] == "internal" || resp["error"] == "shutting_down" || resp["error"] == "timeout":
			failed = true // the write failed: the outcome of this put is unknown
		default:
			t.Fatalf("put %d: %v", i, resp)
		}
	}
	if !failed {
		t.Fatalf("%d puts of %d bytes never ran a 20 MiB space out", len(acked), size)
	}
	// The node is down and waits for space: its files are closed and must
	// open cleanly.
	testwait.Err(t, 10*time.Second, "the stopped node's files to open cleanly", func() error {
		rep, err := storage.Inspect(cfg.DataDir)
		if err != nil {
			return err
		}
		if !rep.OK() {
			return fmt.Errorf("inspect: %+v", rep)
		}
		return nil
	})
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	c2 := &diskClient{c: dialRaw(t, cfg.Self().ClientAddr()), seq: d.seq}
	testwait.Err(t, 20*time.Second, "the node to serve again", func() error {
		st := c2.c.status()
		if st.Role != "Leader" {
			return fmt.Errorf("role %s", st.Role)
		}
		return nil
	})
	// The put that met the full disk had an unknown outcome: it may follow
	// the acknowledged ones, which must all be there, first, in order.
	for i, want := range acked {
		resp := c2.req("message", "GET", "q", "")
		if resp["success"] != true {
			t.Fatalf("pop %d of %d acknowledged: %v", i, len(acked), resp)
		}
		if got := resp["message"]; got != want {
			t.Fatalf("pop %d: %.12q, want %.12q", i, got, want)
		}
	}
	if resp := c2.req("message", "PUT", "q", "after"); resp["success"] != true {
		t.Fatalf("put after the reopen: %v", resp)
	}
}

// TestDiskFullENOSPCFollower: a follower with the guard off runs out of
// space for real while the cluster takes puts. It stops at its failed
// write; the other two go on acknowledging; once space is back, Serve
// reopens it from its files and it catches up with the leader.
func TestDiskFullENOSPCFollower(t *testing.T) {
	mnt := loopfs.Mount(t, 48<<20)
	cfgs := testCluster(t, 3)
	slowElections(cfgs)
	clients := map[int]*rawClient{}
	for i := range cfgs {
		clients[i] = dialRaw(t, cfgs[i].Self().ClientAddr())
	}
	// Nodes 0 and 1 first, so that one of them leads; node 2 joins on the
	// small filesystem with no guard.
	for i := 0; i < 2; i++ {
		startBroker(t, cfgs[i])
	}
	lead := leaderOf(t, map[int]*rawClient{0: clients[0], 1: clients[1]})
	cfg := cfgs[2]
	cfg.DataDir = mnt + "/node2"
	cfg.MinFreeBytes = 0
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	ballast := loopfs.Fill(t, mnt, 6<<20)
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, cfg, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return within 10s of its context ending")
		}
	})
	cl := followingClient(t, cfgs)
	if ok, err := cl.CreateTopic(ctx, "q"); err != nil || !ok {
		t.Fatalf("create topic: %v %v", ok, err)
	}
	testwait.For(t, 10*time.Second, "node 2 to follow", func() bool { return clients[2].status().Applied >= 2 })
	probe := dialRaw(t, cfg.Self().ClientAddr())
	probe.sock.SetRcvtimeo(500 * time.Millisecond)
	down := func() bool {
		_, err := probe.sock.SendBytes([]byte(`{"type":"status","method":"GET"}`), 0)
		if err == nil {
			_, err = probe.sock.RecvBytes(0)
		}
		if err != nil {
			probe = dialRaw(t, cfg.Self().ClientAddr())
			probe.sock.SetRcvtimeo(500 * time.Millisecond)
			return true
		}
		return false
	}
	var acked []string
	for i := 0; i < 400 && !down(); i++ {
		m := fillMessage(i, 64<<10)
		if ok, err := cl.Put(ctx, "q", m); err != nil || !ok {
			t.Fatalf("put %d with node 2 filling up: %v %v", i, ok, err)
		}
		acked = append(acked, m)
	}
	if !down() {
		t.Fatalf("node 2 still serving after %d puts of 64 KiB into 6 MiB", len(acked))
	}
	// The cluster goes on without it.
	for i := 0; i < 5; i++ {
		m := fillMessage(len(acked), 1024)
		if ok, err := cl.Put(ctx, "q", m); err != nil || !ok {
			t.Fatalf("put with node 2 down: %v %v", ok, err)
		}
		acked = append(acked, m)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	testwait.Err(t, 30*time.Second, "node 2 to reopen and catch up", func() error {
		if down() {
			return fmt.Errorf("node 2 not answering yet")
		}
		st, ls := probe.status(), clients[lead].status()
		if st.Applied < ls.Commit {
			return fmt.Errorf("node 2 applied %d, leader commit %d", st.Applied, ls.Commit)
		}
		return nil
	})
	for i, want := range acked {
		if m, ok, err := cl.Pop(ctx, "q"); err != nil || !ok || m != want {
			t.Fatalf("pop %d of %d: %.40q %v %v", i, len(acked), m, ok, err)
		}
	}
}
