package broker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/storage"
)

func putsOf(topic string, lo, hi int) []string {
	var reqs []string
	for i := lo; i < hi; i++ {
		reqs = append(reqs, putReq(topic, fmt.Sprintf("m%05d", i)))
	}
	return reqs
}

func depthsOf(t *testing.T, r *running) []storage.TopicDepth {
	t.Helper()
	d, err := r.b.state.TopicDepths()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFollowerDownCatchesUpBySnapshotThenLog: a follower that was down
// while the leader compacted past its last entry gets a snapshot, then
// follows through the log.
func TestFollowerDownCatchesUpBySnapshotThenLog(t *testing.T) {
	c := newSnapCluster(t, 3, 100, 10, 4<<10)
	lead := c.leader()
	c.must(lead, `{"type":"topic","method":"PUT","topic":"q"}`)
	c.pipeline(lead, putsOf("q", 0, 20))
	f := (lead + 1) % 3
	c.waitApplied(f, lead)
	c.stop(f)
	c.pipeline(lead, putsOf("q", 20, 300))
	testwait.For(t, 10*time.Second, "the leader to compact", func() bool { return c.clients[lead].status().FirstIndex > 30 })

	c.start(f)
	c.waitApplied(f, lead)
	installed := c.nodes[f].b.stats.snapshotsInstalled.Load()
	if installed == 0 {
		t.Fatalf("the follower caught up without a snapshot, though the leader's log starts at %d", c.clients[lead].status().FirstIndex)
	}
	// Then through the log: more writes arrive as entries, not snapshots.
	c.pipeline(lead, putsOf("q", 300, 350))
	c.waitApplied(f, lead)
	if got := c.nodes[f].b.stats.snapshotsInstalled.Load(); got != installed {
		t.Fatalf("the follower installed %d more snapshots for 50 new entries; want the log", got-installed)
	}
	if got, want := depthsOf(t, c.nodes[f]), depthsOf(t, c.nodes[lead]); !slices.Equal(got, want) {
		t.Fatalf("follower topics %+v, leader %+v", got, want)
	}
}

// TestRestartAllAfterCompactions: after several snapshots and compactions
// every broker restarts; nothing acknowledged is lost and nothing popped
// comes back.
func TestRestartAllAfterCompactions(t *testing.T) {
	c := newSnapCluster(t, 3, 100, 10, 4<<10)
	lead := c.leader()
	c.must(lead, `{"type":"topic","method":"PUT","topic":"a"}`)
	c.must(lead, `{"type":"topic","method":"PUT","topic":"b"}`)
	var popped []string
	for round := 0; round < 4; round++ {
		c.pipeline(lead, putsOf("a", round*100, round*100+100))
		c.pipeline(lead, putsOf("b", round*100, round*100+60))
		for _, r := range c.pipeline(lead, slices.Repeat([]string{popReq("a")}, 40)) {
			popped = append(popped, r["message"].(string))
		}
		c.must((lead+round)%3, snapshotReq) // any node snapshots itself
	}
	for i := range c.cfgs {
		c.waitApplied(i, lead)
	}
	if taken := c.nodes[lead].b.stats.snapshotsTaken.Load(); taken < 3 {
		t.Fatalf("the leader took %d snapshots, want several", taken)
	}
	for i := range c.cfgs {
		c.stop(i)
	}
	for i := range c.cfgs {
		c.start(i)
	}
	lead = c.leader()
	var wantA, wantB []string
	for round := 0; round < 4; round++ {
		for i := round * 100; i < round*100+100; i++ {
			wantA = append(wantA, fmt.Sprintf("m%05d", i))
		}
		for i := round * 100; i < round*100+60; i++ {
			wantB = append(wantB, fmt.Sprintf("m%05d", i))
		}
	}
	if !slices.Equal(popped, wantA[:len(popped)]) {
		t.Fatalf("pops before the restart were not FIFO: %v", firstDiff(popped, wantA))
	}
	for topic, want := range map[string][]string{"a": wantA[len(popped):], "b": wantB} {
		var got []string
		for _, r := range c.pipeline(lead, slices.Repeat([]string{popReq(topic)}, len(want))) {
			got = append(got, r["message"].(string))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("topic %s after restarting every broker: %s", topic, firstDiff(got, want))
		}
		if r := c.clients[lead].do(popReq(topic)); r["success"] != false {
			t.Fatalf("topic %s has more after draining: %v (a popped message came back?)", topic, r)
		}
	}
}

// TestLogAndDiskStayBounded: messages produced and consumed through a
// three-node cluster keep every log within snapshot_entries +
// trailing_entries entries and every data directory within a bound set by
// the live data, not by the traffic. (BenchmarkDiskAfterTraffic runs the
// large count.)
func TestLogAndDiskStayBounded(t *testing.T) {
	const entries, trailing, rounds, perRound, msgBytes = 200, 50, 8, 250, 512
	c := newSnapCluster(t, 3, entries, trailing, 16<<10)
	lead := c.leader()
	c.must(lead, `{"type":"topic","method":"PUT","topic":"q"}`)
	body := string(slices.Repeat([]byte("p"), msgBytes))
	for round := 0; round < rounds; round++ {
		var reqs []string
		for i := 0; i < perRound; i++ {
			reqs = append(reqs, putReq("q", body))
		}
		c.pipeline(lead, reqs)
		c.pipeline(lead, slices.Repeat([]string{popReq("q")}, perRound))
	}
	for i := range c.cfgs {
		c.waitApplied(i, lead)
	}
	// Traffic: 4000 entries of ~600 bytes, 2.4 MB through each log. Bound:
	// raft.db holds at most entries+trailing entries (~150 KB) plus bbolt's
	// minimum; state.db and two snapshots hold an empty queue and sessions.
	const maxDirBytes = 1 << 20
	final := c.nodes[lead].b.state.AppliedIndex()
	for i := range c.cfgs {
		// The published status can be a tick old: wait for one that has
		// applied everything, then for its last compaction, whose steps
		// end within a few ticks (CompactLater).
		var st wire.Status
		testwait.For(t, 30*time.Second, fmt.Sprintf("node %d to apply %d, compact, and hold at most %d log entries", i, final, entries+trailing), func() bool {
			st = c.clients[i].status()
			return st.Applied >= final && st.Applied-st.Snapshot <= entries && st.LastIndex-st.FirstIndex+1 <= entries+trailing
		})
		if got := dirBytes(t, c.cfgs[i].DataDir); got > maxDirBytes {
			t.Errorf("node %d data dir is %d bytes after %d messages of %d bytes, want at most %d", i, got, rounds*perRound, msgBytes, maxDirBytes)
		}
		b := c.nodes[i].b
		t.Logf("node %d: log %d..%d, dir %d bytes, snapshots %d taken %d installed, rebuilt raft.db %d state.db %d times",
			i, st.FirstIndex, st.LastIndex, dirBytes(t, c.cfgs[i].DataDir), b.stats.snapshotsTaken.Load(), b.stats.snapshotsInstalled.Load(),
			b.stats.raftRebuilds.Load(), b.stats.stateRebuilds.Load())
	}
	if c.nodes[lead].b.stats.stateRebuilds.Load() == 0 || c.nodes[lead].b.stats.raftRebuilds.Load() == 0 {
		t.Errorf("the leader never rebuilt its bbolt files")
	}
}
