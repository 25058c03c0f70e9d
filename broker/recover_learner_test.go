package broker

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/raftlog"
)

var recoverMessages = flag.Int("recover.messages", 0, "messages of 256 B queued before TestRecoverAsLearnerTiming wipes a follower (0: skip it)")

// TestRecoverAsLearner: in a two-node cluster, a follower whose data
// directory was wiped starts with --recover. The leader demotes it to
// learner, so that it is a quorum of one (decision 25): it restarts and
// elects itself while the wiped node cannot catch up (its disk guard is
// tripped, so it drops appends). Once the wiped node can append again it
// catches up, is promoted back, stops recovering, and, made leader, gives
// back every message.
//
// Without the demotion the restarted leader needs the recovering node's
// vote, which it refuses: no leader is ever elected again.
func TestRecoverAsLearner(t *testing.T) {
	// The leader must still lead when the wiped node comes back: with
	// CheckQuorum, a leader of two steps down once its follower has been
	// silent for an election timeout, and then nothing can elect (the
	// limit decision 25 names). Long elections keep it through the wipe.
	c := newSnapClusterWith(t, 2, 100_000, 1000, 64<<10, func(cfg *config.Node) {
		cfg.ElectionTicks = 200 // 10 s
		cfg.RequestTimeout = 25 * time.Second
	})
	lead := c.leader()
	f := 1 - lead
	c.must(lead, `{"type":"topic","method":"PUT","topic":"q"}`)
	var want []string
	put := func(n int) {
		t.Helper()
		var reqs []string
		for range n {
			m := fmt.Sprintf("m%04d", len(want))
			want = append(want, m)
			reqs = append(reqs, putReq("q", m))
		}
		c.pipeline(lead, reqs)
	}
	put(200)

	c.stop(f)
	if err := os.RemoveAll(c.cfgs[f].DataDir); err != nil {
		t.Fatal(err)
	}
	c.cfgs[f].Recover = true
	c.cfgs[f].MaxDataBytes = 1 // its disk guard trips at once: it appends nothing
	c.start(f)
	c.cfgs[f].Recover = false
	role := func(id int) string { return memberRole(c.clients, id) }
	testwait.For(t, 10*time.Second, "the leader to demote the recovering node", func() bool { return role(f) == "learner" })
	if st := c.clients[f].status(); !st.Recovering || st.LastIndex != 0 {
		t.Fatalf("wiped node while its guard is tripped: %+v; want recovering with an empty log", st)
	}

	// The leader restarts: a quorum of one, it elects itself and commits.
	c.stop(lead)
	c.start(lead)
	if got := c.leader(); got != lead {
		t.Fatalf("leader %d after the restart, want %d (the only voter)", got, lead)
	}
	put(100)

	// Space is back: the node catches up and is promoted back.
	c.nodes[f].b.disk.maxData.Store(0)
	testwait.For(t, 20*time.Second, "the demoted node to be a voter again and stop recovering", func() bool {
		return role(f) == "voter" && !c.clients[f].status().Recovering && !c.nodes[f].b.raft.Recovering()
	})
	changes := changeEntries(t, c.nodes[lead].b)
	if !slices.Contains(changes, fmt.Sprintf("demote %d", f)) || !slices.Contains(changes, fmt.Sprintf("promote %d", f)) {
		t.Fatalf("the leader's log holds changes %v; want node %d demoted, then promoted", changes, f)
	}

	c.makeLeader(f)
	c.drainExpect(t, f, map[string][]string{"q": want})
}

// memberRole is id's role ("voter", "learner") as whichever node leads
// now lists it; "" while no node answers the list (an election).
func memberRole(clients map[int]*rawClient, id int) string {
	for _, cl := range clients {
		got := cl.do(`{"type":"member","method":"GET"}`)
		list, ok := got["members"].([]any)
		if got["success"] != true || !ok {
			continue
		}
		for _, m := range list {
			if m := m.(map[string]any); int(m["id"].(float64)) == id {
				return m["role"].(string)
			}
		}
		return ""
	}
	return ""
}

// changeEntries lists the membership changes in b's log ("demote 1").
func changeEntries(t *testing.T, b *Broker) []string {
	t.Helper()
	first, _ := b.raft.FirstIndex()
	last, _ := b.raft.LastIndex()
	ents, err := b.raft.Entries(first, last+1, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Type != raftlog.EntryConfChange {
			continue
		}
		cc, err := raftlog.UnmarshalConfChange(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%v %d", cc.Type, nodeIndex(cc.ID)))
	}
	return out
}

// TestRecoverAsLearnerTiming measures, in a three-node cluster holding
// -recover.messages queued messages, how long a wiped follower started
// with --recover takes to be demoted, to hold the leader's commit index
// (the catch-up, the baseline), and to be a voter again (catch-up plus the
// promotion). It logs the times and asserts none: speed lives in
// measurements, not in tests.
func TestRecoverAsLearnerTiming(t *testing.T) {
	n := *recoverMessages
	if n == 0 {
		t.Skip("set -recover.messages=N to measure")
	}
	c := newSnapCluster(t, 3, 10_000, 1000, 1<<20)
	lead := c.leader()
	c.must(lead, `{"type":"topic","method":"PUT","topic":"q"}`)
	body := strings.Repeat("x", 250)
	for lo := 0; lo < n; lo += 2000 {
		var reqs []string
		for i := lo; i < min(lo+2000, n); i++ {
			reqs = append(reqs, putReq("q", fmt.Sprintf("%06d", i)+body))
		}
		c.pipeline(lead, reqs)
	}
	f := (lead + 1) % 3
	c.waitApplied(f, lead)
	c.stop(f)
	if err := os.RemoveAll(c.cfgs[f].DataDir); err != nil {
		t.Fatal(err)
	}
	commit := c.clients[lead].status().Commit
	c.cfgs[f].Recover = true
	start := time.Now()
	c.start(f)
	c.cfgs[f].Recover = false
	role := func() string { return memberRole(c.clients, f) }
	var demoted, caughtUp, promoted time.Duration
	testwait.For(t, 10*time.Minute, "the wiped node to be a voter again and stop recovering", func() bool {
		now := time.Since(start)
		r := role()
		if demoted == 0 && r == "learner" {
			demoted = now
		}
		st := c.clients[f].status()
		if caughtUp == 0 && st.Commit >= commit {
			caughtUp = now
		}
		if demoted > 0 && r == "voter" && !st.Recovering {
			promoted = now
			return true
		}
		return false
	})
	t.Logf("%d messages of 256 B queued, commit %d: demoted after %v, holds the commit index after %v, voter again after %v (%.2fx the catch-up)",
		n, commit, demoted.Round(time.Millisecond), caughtUp.Round(time.Millisecond), promoted.Round(time.Millisecond),
		float64(promoted)/float64(max(caughtUp, 1)))
}
