package raftlog

import (
	"fmt"
	"slices"
	"testing"
)

// TestFigure7FollowersBroughtLevel: the leader of term 8 in the Raft
// paper's Figure 7 makes each of the follower logs (a)-(f) equal to its
// own, overwriting extra and conflicting entries, in few round trips.
func TestFigure7FollowersBroughtLevel(t *testing.T) {
	leaderLog := []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6}
	tests := []struct {
		name        string
		log         []uint64
		maxRejected int
	}{
		{"a missing one", []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6}, 1},
		{"b missing many", []uint64{1, 1, 1, 4}, 1},
		{"c one extra", []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 1},
		{"d extra of term 7", []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 1},
		{"e missing and conflicting", []uint64{1, 1, 1, 4, 4, 4, 4}, 2},
		{"f conflicting terms 2 and 3", []uint64{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Node 3 shares the leader's log, so that the leader can win
			// without the follower's vote, and never rejects.
			storages := map[uint64]*MemoryStorage{
				1: storageWithTerms(leaderLog, 7),
				2: storageWithTerms(tt.log, 7),
				3: storageWithTerms(leaderLog, 7),
			}
			n := newNetworkWithStorage(t, 1, ids(3), storages, nil)
			n.elect(1)
			if got := n.core(1).term; got != 8 {
				t.Fatalf("leader term %d, want 8", got)
			}
			want := append(slices.Clone(leaderLog), 8)
			if got := n.logTerms(2); !slices.Equal(got, want) {
				t.Fatalf("follower log terms %v, want %v", got, want)
			}
			if got := n.core(2).log.committed; got != 11 {
				t.Fatalf("follower commit %d, want 11", got)
			}
			if rejected := n.rejectedAppends(); rejected > tt.maxRejected {
				t.Fatalf("%d rejected MsgApp, want at most %d", rejected, tt.maxRejected)
			}
		})
	}
}

// TestFigure8OldTermNotCommittedByCount replays the paper's Figure 8: a
// leader that replicated an entry of an older term to a majority must not
// commit it by counting, because another node can still be elected and
// overwrite it.
func TestFigure8OldTermNotCommittedByCount(t *testing.T) {
	n := newNetwork(t, 5, ids(5), nil)
	n.elect(1)
	// (a) 1 replicates "old" (index 2) to 2 only.
	n.cut[[2]uint64{1, 3}], n.cut[[2]uint64{1, 4}], n.cut[[2]uint64{1, 5}] = true, true, true
	n.propose(1, "old")
	oldTerm := n.core(1).term
	if got := n.core(2).log.termOrZero(2); got != oldTerm {
		t.Fatalf("node 2 index 2 term %d, want %d", got, oldTerm)
	}
	// (b) 1 crashes; 5 wins with votes from 3 and 4 and appends its no-op
	// at index 2, which reaches nobody.
	n.heal()
	n.isolate(1)
	n.filter = func(m Message) (Message, bool) { return m, !(m.From == 5 && m.Type == MsgApp) }
	n.elect(5)
	n.filter = nil
	n.isolate(5)
	// (c) 5 crashes; 1 comes back, is elected and replicates index 2 (of
	// the old term) to 3, but not its own no-op at index 3.
	n.heal()
	n.isolate(5)
	n.restart(1)
	n.filter = func(m Message) (Message, bool) {
		if m.From == 1 && m.Type == MsgApp {
			m.Entries = slices.DeleteFunc(slices.Clone(m.Entries), func(e Entry) bool { return e.Index > 2 })
		}
		return m, true
	}
	for i := 0; n.core(1).Role() != RoleLeader; i++ {
		if i > 10 {
			t.Fatalf("node 1 cannot win again:\n%v", n)
		}
		_ = n.core(1).Campaign()
		n.stabilize()
	}
	holders := 0
	for _, id := range ids(5) {
		if n.core(id).log.termOrZero(2) == oldTerm {
			holders++
		}
	}
	if holders < 3 {
		for _, id := range ids(5) {
			t.Logf("%d: %v", id, n.logTerms(id))
		}
		t.Fatalf("old entry on %d nodes, the scenario needs a majority", holders)
	}
	if got := n.core(1).log.committed; got >= 2 {
		t.Fatalf("leader of term %d committed %d by counting an entry of term %d", n.core(1).term, got, oldTerm)
	}
	// (d) 1 crashes again; 5 returns and wins: its index 2 has a newer
	// term, and it overwrites the old entry everywhere.
	n.filter = nil
	n.heal()
	n.isolate(1)
	n.restart(5)
	for i := 0; n.core(5).Role() != RoleLeader; i++ {
		if i > 10 {
			t.Fatalf("node 5 cannot win:\n%v", n)
		}
		_ = n.core(5).Campaign()
		n.stabilize()
	}
	for _, id := range []uint64{2, 3, 4, 5} {
		if got := n.core(id).log.termOrZero(2); got == oldTerm {
			t.Fatalf("node %d still holds the old entry", id)
		}
		if slices.Contains(n.appliedData(id), "old") {
			t.Fatalf("node %d applied the overwritten entry", id)
		}
	}
}

func (n *network) rejectedAppends() int { return n.rejects }

func TestFastBackOffFewRoundTrips(t *testing.T) {
	long := func(prefix, length int, tail uint64) []uint64 {
		terms := make([]uint64, length)
		for i := range terms {
			terms[i] = 1
			if i >= prefix {
				terms[i] = tail
			}
		}
		return terms
	}
	tests := []struct {
		name        string
		leader      []uint64
		follower    []uint64
		maxRejected int
	}{
		{"follower far behind", long(10, 500, 3), long(10, 10, 1), 1},
		{"long conflicting suffix", long(50, 500, 3), long(50, 450, 2), 2},
		{"conflict behind a longer follower", long(50, 300, 3), long(50, 600, 2), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storages := map[uint64]*MemoryStorage{
				1: storageWithTerms(tt.leader, 3),
				2: storageWithTerms(tt.follower, 3),
				3: storageWithTerms(tt.leader, 3),
			}
			n := newNetworkWithStorage(t, 1, ids(3), storages, nil)
			n.elect(1)
			if got, want := n.logTerms(2), n.logTerms(1); !slices.Equal(got, want) {
				t.Fatalf("follower log differs from leader's")
			}
			if n.rejects > tt.maxRejected {
				t.Fatalf("%d rejections, want at most %d", n.rejects, tt.maxRejected)
			}
		})
	}
}

func TestBatchingAndInflightWindow(t *testing.T) {
	const maxSize, inflight = 130, 3
	n := newNetwork(t, 1, ids(2), func(c *Config) { c.MaxSizePerMsg = maxSize; c.MaxInflightMsgs = inflight })
	n.elect(1)
	// Hold back node 2's answers to see the window fill.
	n.cut[[2]uint64{2, 1}] = true
	var batch [][]byte
	for i := range 40 {
		batch = append(batch, []byte(fmt.Sprintf("%030d", i)))
	}
	if err := n.core(1).ProposeBatch(batch); err != nil {
		t.Fatal(err)
	}
	var apps []Message
	n.filter = func(m Message) (Message, bool) {
		if m.Type == MsgApp && len(m.Entries) > 0 {
			apps = append(apps, m)
		}
		return m, true
	}
	n.stabilize()
	if len(apps) != inflight {
		t.Fatalf("%d MsgApp with entries in flight, want the window of %d", len(apps), inflight)
	}
	for _, m := range apps {
		if size := messageSize(m.Entries); size > maxSize && len(m.Entries) > 1 {
			t.Fatalf("MsgApp carries %d bytes, limit %d", size, maxSize)
		}
	}
	n.heal()
	n.filter = nil
	n.tick(5)
	if got := n.appliedData(2); len(got) != 40 {
		t.Fatalf("follower applied %d of 40", len(got))
	}
}

func TestHeartbeatCommitIsCappedAtMatch(t *testing.T) {
	n := newNetwork(t, 1, ids(3), nil)
	n.elect(1)
	n.cut[[2]uint64{1, 3}] = true
	n.propose(1, "a")
	n.propose(1, "b")
	var beats []Message
	n.filter = func(m Message) (Message, bool) {
		if m.Type == MsgHeartbeat {
			beats = append(beats, m)
		}
		return m, m.Type == MsgHeartbeat
	}
	n.heal()
	_ = n.core(1).Step(Message{Type: MsgBeat})
	n.stabilize()
	for _, m := range beats {
		want := n.core(1).log.committed
		if m.To == 3 {
			want = n.core(1).prs[3].match
		}
		if m.Commit != want {
			t.Fatalf("heartbeat to %d carries commit %d, want %d", m.To, m.Commit, want)
		}
	}
	if len(beats) != 2 {
		t.Fatalf("%d heartbeats, want 2", len(beats))
	}
	// Followers learn the commit index from the next MsgApp or heartbeat.
	n.filter = nil
	n.tick(3)
	for _, id := range ids(3) {
		if got := n.appliedData(id); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("node %d applied %v", id, got)
		}
	}
}

func TestUncommittedBytesLimit(t *testing.T) {
	n := newNetwork(t, 1, ids(3), func(c *Config) { c.MaxUncommittedEntriesBytes = 10 })
	n.elect(1)
	n.isolate(1)
	if err := n.core(1).Propose([]byte("123456")); err != nil {
		t.Fatal(err)
	}
	if err := n.core(1).Propose([]byte("123456")); err == nil {
		t.Fatal("proposal over the uncommitted limit accepted")
	}
	n.heal()
	n.tick(3)
	if err := n.core(1).Propose([]byte("123456")); err != nil {
		t.Fatalf("proposal after commit dropped: %v", err)
	}
}

func TestCommittedSizePerReady(t *testing.T) {
	st := NewMemoryStorage()
	cfg := testConfig(1, ids(1), st, 1)
	cfg.MaxCommittedSizePerReady = 10
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Campaign()
	handle := func() Ready {
		rd := c.Ready()
		persistReady(t, st, rd)
		c.Advance(rd)
		return rd
	}
	handle()
	handle()
	_ = c.ProposeBatch([][]byte{[]byte("aaaaaa"), []byte("bbbbbb"), []byte("cccccc")})
	handle()
	var sizes []int
	for c.HasReady() {
		rd := handle()
		sizes = append(sizes, len(rd.CommittedEntries))
	}
	if !slices.Equal(sizes, []int{1, 1, 1}) {
		t.Fatalf("committed entries per ready %v, want one 6-byte entry each under a 10-byte bound", sizes)
	}
}
