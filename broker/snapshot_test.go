package broker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/testwait"
)

// snapCluster is an in-process cluster with small snapshot settings.
type snapCluster struct {
	t       *testing.T
	cfgs    []config.Node
	nodes   map[int]*running
	clients map[int]*rawClient
}

func newSnapCluster(t *testing.T, n int, entries, trailing uint64, chunkBytes int) *snapCluster {
	t.Helper()
	return newSnapClusterWith(t, n, entries, trailing, chunkBytes, func(*config.Node) {})
}

// newSnapClusterWith is newSnapCluster with edit applied to each node's
// configuration before it starts.
func newSnapClusterWith(t *testing.T, n int, entries, trailing uint64, chunkBytes int, edit func(*config.Node)) *snapCluster {
	t.Helper()
	cfgs := testCluster(t, n)
	for i := range cfgs {
		cfgs[i].SnapshotEntries = entries
		cfgs[i].TrailingEntries = trailing
		cfgs[i].SnapshotChunkBytes = chunkBytes
		cfgs[i].SnapshotsKept = 2
		cfgs[i].ElectionTicks = 20
		cfgs[i].RequestTimeout = 5 * time.Second
		cfgs[i].ShutdownTimeout = time.Second
		edit(&cfgs[i])
	}
	c := &snapCluster{t: t, cfgs: cfgs, nodes: map[int]*running{}, clients: map[int]*rawClient{}}
	for i := range cfgs {
		c.start(i)
	}
	return c
}

// start starts node i with a low rebuild threshold, so that tests exercise
// the rebuild of bloated files.
func (c *snapCluster) start(i int) {
	c.t.Helper()
	c.nodes[i] = startBrokerWith(c.t, c.cfgs[i], func(b *Broker) { b.rebuildMinFreeBytes = 64 << 10 })
	c.clients[i] = dialRaw(c.t, c.cfgs[i].Self().ClientAddr())
}

func (c *snapCluster) stop(i int) {
	c.t.Helper()
	c.nodes[i].stop(c.t)
	delete(c.nodes, i)
	delete(c.clients, i)
}

func (c *snapCluster) leader() int { return leaderOf(c.t, c.clients) }

// must sends req to node i and fails unless the answer has success true.
func (c *snapCluster) must(i int, req string) map[string]any {
	c.t.Helper()
	got := c.clients[i].do(req)
	if got["success"] != true {
		c.t.Fatalf("node %d: %s answered %v", i, req, got)
	}
	return got
}

// waitApplied waits until node i has applied node j's commit index.
func (c *snapCluster) waitApplied(i, j int) {
	c.t.Helper()
	commit := c.clients[j].status().Commit
	testwait.For(c.t, 20*time.Second, fmt.Sprintf("node %d to apply %d", i, commit), func() bool {
		return c.clients[i].status().Applied >= commit
	})
}

// makeLeader makes node f the leader: stop the third node, then the leader
// gracefully (it hands leadership to its only live follower, f), restart
// both; retry if the election went elsewhere.
func (c *snapCluster) makeLeader(f int) {
	c.t.Helper()
	for attempt := 0; attempt < 10; attempt++ {
		lead := c.leader()
		if lead == f {
			return
		}
		var other []int
		for i := range c.cfgs {
			if i != lead && i != f {
				other = append(other, i)
			}
		}
		for _, o := range other {
			c.stop(o)
		}
		c.stop(lead)
		for _, o := range append(other, lead) {
			c.start(o)
		}
	}
	c.t.Fatalf("node %d never became leader", f)
}

// pipeline sends reqs to node i on one DEALER socket without waiting, so
// that they commit in batches, then checks every answer is success. The
// broker keeps their order (one socket, one queue).
// drainExpect pops every queue in want from node i and checks it held
// exactly those messages, in order, and is empty afterwards.
func (c *snapCluster) drainExpect(t *testing.T, i int, want map[string][]string) {
	t.Helper()
	for topic, msgs := range want {
		var got []string
		for _, r := range c.pipeline(i, slices.Repeat([]string{popReq(topic)}, len(msgs))) {
			got = append(got, r["message"].(string))
		}
		if r := c.clients[i].do(popReq(topic)); r["success"] != false {
			t.Fatalf("%s not empty after draining node %d: %v", topic, i, r)
		}
		if !slices.Equal(got, msgs) {
			t.Fatalf("drained %d messages from %s on node %d, want %d (first diff near %v)", len(got), topic, i, len(msgs), firstDiff(got, msgs))
		}
	}
}

func (c *snapCluster) pipeline(i int, reqs []string) []map[string]any {
	c.t.Helper()
	return pipelineTo(c.t, c.cfgs[i], reqs)
}

func pipelineTo(t testing.TB, cfg config.Node, reqs []string) []map[string]any {
	t.Helper()
	d, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.SetLinger(0)
	d.SetRcvtimeo(30 * time.Second)
	if err := d.Connect("tcp://" + cfg.Self().ClientAddr()); err != nil {
		t.Fatal(err)
	}
	const window = 500
	sent, got := 0, 0
	var out []map[string]any
	for got < len(reqs) {
		for sent < len(reqs) && sent-got < window {
			if _, err := d.SendMessage("", reqs[sent]); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		frames, err := d.RecvMessageBytes(0)
		if err != nil {
			t.Fatalf("node %d: reply %d of %d: %v", cfg.ID, got, len(reqs), err)
		}
		var r map[string]any
		if err := json.Unmarshal(frames[len(frames)-1], &r); err != nil || r["success"] != true {
			t.Fatalf("node %d: a pipelined request answered %s (%v)", cfg.ID, frames[len(frames)-1], err)
		}
		out = append(out, r)
		got++
	}
	return out
}

func dirBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			total += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

func putReq(topic, msg string) string {
	return fmt.Sprintf(`{"type":"message","method":"PUT","topic":%q,"message":%q}`, topic, msg)
}

func popReq(topic string) string {
	return fmt.Sprintf(`{"type":"message","method":"GET","topic":%q}`, topic)
}

const snapshotReq = `{"type":"snapshot","method":"PUT"}`

// TestWipedFollowerRejoinsViaSnapshot: a follower whose data directory is
// removed rejoins through InstallSnapshot (the log it needs is compacted),
// then, made leader, serves the same topics in the same order, the same
// queues and the same client sessions.
func TestWipedFollowerRejoinsViaSnapshot(t *testing.T) {
	start := time.Now()
	c := newSnapCluster(t, 3, 100, 10, 4<<10)
	lead := c.leader()
	logStep(t, start, "leader")
	for _, topic := range []string{"zeta", "alpha", "mid"} {
		c.must(lead, fmt.Sprintf(`{"type":"topic","method":"PUT","topic":%q}`, topic))
	}
	// A session answer that must survive in the snapshot: the retry of
	// (client c1, seq 1) returns the first answer, not the next message.
	body := strings.Repeat("b", 500)
	var reqs []string
	for i := 0; i < 150; i++ {
		reqs = append(reqs, putReq([]string{"zeta", "alpha", "mid"}[i%3], fmt.Sprintf("m%03d-%s", i, body)))
	}
	c.pipeline(lead, reqs)
	first := c.must(lead, `{"type":"message","method":"GET","topic":"zeta","client_id":"c1","seq":1}`)
	reqs = nil
	for i := 0; i < 20; i++ {
		reqs = append(reqs, popReq("alpha"))
	}
	c.pipeline(lead, reqs)
	f := (lead + 1) % 3
	c.stop(f)
	if err := os.RemoveAll(c.cfgs[f].DataDir); err != nil {
		t.Fatal(err)
	}
	reqs = nil
	for i := 150; i < 400; i++ { // past snapshot_entries: the leader compacts
		reqs = append(reqs, putReq("mid", fmt.Sprintf("m%03d", i)))
	}
	c.pipeline(lead, reqs)
	snap := c.must(lead, snapshotReq)
	index := uint64(snap["index"].(float64))
	testwait.For(t, time.Second, "status to show the snapshot", func() bool { return c.clients[lead].status().Snapshot == index })
	st := c.clients[lead].status()
	if st.FirstIndex <= 10 || index == 0 {
		t.Fatalf("leader after the admin snapshot: %+v, answer %v: want a compacted log and the snapshot index", st, snap)
	}
	wantTopics := c.must(lead, `{"type":"topic","method":"GET"}`)["topics"]

	logStep(t, start, "written")
	// A wiped node is started once with --recover: it neither votes nor
	// leads until it has caught up.
	c.cfgs[f].Recover = true
	var markedRecovering bool
	c.nodes[f] = startBrokerWith(t, c.cfgs[f], func(b *Broker) {
		b.rebuildMinFreeBytes = 64 << 10
		markedRecovering = b.raft.Recovering() && b.core.Status().Recovering
	})
	c.clients[f] = dialRaw(t, c.cfgs[f].Self().ClientAddr())
	c.cfgs[f].Recover = false
	if !markedRecovering {
		t.Fatalf("node started with --recover: not recovering")
	}
	c.waitApplied(f, lead)
	testwait.For(t, 20*time.Second, "the wiped follower to end recovering", func() bool {
		return !c.clients[f].status().Recovering && !c.nodes[f].b.raft.Recovering()
	})
	logStep(t, start, "caught up")
	if n := c.nodes[f].b.stats.snapshotsInstalled.Load(); n == 0 {
		t.Fatalf("the wiped follower caught up without installing a snapshot")
	}
	fst := c.clients[f].status()
	if fst.Snapshot == 0 || fst.FirstIndex <= 1 {
		t.Fatalf("wiped follower status %+v: want snapshot_index and first_log_index from the snapshot", fst)
	}

	c.makeLeader(f)
	logStep(t, start, "leader")
	if got := c.must(f, `{"type":"topic","method":"GET"}`)["topics"]; fmt.Sprint(got) != fmt.Sprint(wantTopics) {
		t.Fatalf("topics on the rejoined node: %v, want %v", got, wantTopics)
	}
	if got := c.must(f, `{"type":"message","method":"GET","topic":"zeta","client_id":"c1","seq":1}`); got["message"] != first["message"] {
		t.Fatalf("session retry on the rejoined node answered %v, first answer was %v", got, first)
	}
	want := map[string][]string{}
	for i := 0; i < 400; i++ {
		topic := "mid"
		msg := fmt.Sprintf("m%03d", i)
		if i < 150 {
			topic = []string{"zeta", "alpha", "mid"}[i%3]
			msg += "-" + body
		}
		want[topic] = append(want[topic], msg)
	}
	want["zeta"] = want["zeta"][1:]
	want["alpha"] = want["alpha"][20:]
	c.drainExpect(t, f, want)
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("index %d: %.20q vs %.20q", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d vs %d", len(a), len(b))
}

func logStep(t *testing.T, start time.Time, what string) {
	t.Logf("%6.2fs %s", time.Since(start).Seconds(), what)
}
