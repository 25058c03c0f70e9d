package raftlog

import (
	"errors"
	"slices"
	"testing"
)

func TestReadIndex(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		asker  uint64
		cutOff bool // the leader cannot reach a quorum
		want   bool
	}{
		{"one node answers at once", 1, 1, false, true},
		{"leader", 3, 1, false, true},
		{"follower forwards", 3, 2, false, true},
		{"leader without quorum never answers", 3, 1, true, false},
		{"five nodes, follower", 5, 4, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNetwork(t, 3, ids(tt.size), nil)
			n.elect(1)
			n.propose(1, "w")
			if tt.cutOff {
				n.isolate(1)
			}
			n.core(tt.asker).ReadIndex([]byte("req-1"))
			n.stabilize()
			rs := n.nodes[tt.asker].readStates
			if !tt.want {
				if len(rs) != 0 {
					t.Fatalf("answered without a quorum: %+v", rs)
				}
				return
			}
			want := ReadState{Index: n.core(1).log.committed, Context: []byte("req-1")}
			if len(rs) != 1 || rs[0].Index != want.Index || string(rs[0].Context) != "req-1" {
				t.Fatalf("read states %+v, want [%+v]", rs, want)
			}
		})
	}
}

// A new leader answers reads only after it committed its no-op: before
// that its commit index may lag behind the cluster's.
func TestReadIndexWaitsForCommitInTerm(t *testing.T) {
	n := newNetwork(t, 3, ids(3), nil)
	// Messages from the new leader's first round are held back.
	n.filter = func(m Message) (Message, bool) { return m, m.Type != MsgApp }
	_ = n.core(1).Campaign()
	n.stabilize()
	if n.core(1).Role() != RoleLeader {
		t.Fatal("no leader")
	}
	n.core(1).ReadIndex([]byte("early"))
	n.stabilize()
	if len(n.nodes[1].readStates) != 0 {
		t.Fatalf("answered before committing in term: %+v", n.nodes[1].readStates)
	}
	n.filter = nil
	n.tick(2)
	if rs := n.nodes[1].readStates; len(rs) != 1 || rs[0].Index != n.core(1).log.committed {
		t.Fatalf("read states %+v after the no-op committed (commit %d)", rs, n.core(1).log.committed)
	}
}

func TestLeadershipTransfer(t *testing.T) {
	tests := []struct {
		name string
		via  uint64 // the node that asks
	}{
		{"asked on leader", 1},
		{"forwarded by follower", 3},
		{"asked by the transferee", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNetwork(t, 5, ids(3), func(c *Config) { c.PreVote = true; c.CheckQuorum = true })
			n.elect(1)
			n.propose(1, "a")
			term := n.core(1).term
			n.core(tt.via).TransferLeadership(2)
			n.stabilize()
			if n.leader() != 2 || n.core(2).term != term+1 {
				t.Fatalf("after transfer:\n%v", n)
			}
			n.propose(2, "b")
			for _, id := range ids(3) {
				if got := n.appliedData(id); !slices.Equal(got, []string{"a", "b"}) {
					t.Fatalf("node %d applied %v", id, got)
				}
			}
		})
	}
}

func TestLeadershipTransferToLaggingFollower(t *testing.T) {
	n := newNetwork(t, 5, ids(3), func(c *Config) { c.CheckQuorum = true })
	n.elect(1)
	n.isolate(3)
	n.propose(1, "a")
	n.core(1).TransferLeadership(3)
	n.stabilize()
	if err := n.core(1).Propose([]byte("dropped")); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("proposal during transfer: %v, want ErrProposalDropped", err)
	}
	// 3 is unreachable: the transfer is abandoned after an election timeout.
	n.tick(10, 1)
	if n.core(1).leadTransferee != None || n.leader() != 1 {
		t.Fatalf("transfer not aborted:\n%v", n)
	}
	n.propose(1, "b")
	// Reachable again: 3 is first brought level, then takes over.
	n.heal()
	n.core(1).TransferLeadership(3)
	n.stabilize()
	if n.leader() != 3 {
		t.Fatalf("transfer to the caught-up node failed:\n%v", n)
	}
	if got := n.appliedData(3); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("new leader applied %v", got)
	}
}

func TestSnapshotSentWhenEntriesCompacted(t *testing.T) {
	n := newNetwork(t, 9, ids(3), nil)
	n.elect(1)
	n.isolate(3)
	for _, d := range []string{"a", "b", "c", "d", "e"} {
		n.propose(1, d)
	}
	applied := n.nodes[1].appliedIndex()
	if err := n.nodes[1].storage.Compact(applied - 1); err != nil {
		t.Fatal(err)
	}
	var snaps []Message
	n.filter = func(m Message) (Message, bool) {
		if m.Type == MsgSnap {
			snaps = append(snaps, m)
		}
		return m, true
	}
	n.heal()
	n.tick(3)
	if len(snaps) != 1 || snaps[0].To != 3 || snaps[0].Snapshot.Index != applied-1 {
		t.Fatalf("snapshots sent %+v, want one to 3 at %d", snaps, applied-1)
	}
	tn := n.nodes[3]
	if len(tn.snapshots) != 1 || tn.snapshots[0].Index != applied-1 || !slices.Equal(tn.snapshots[0].Conf.Voters, ids(3)) {
		t.Fatalf("follower installed %+v", tn.snapshots)
	}
	if first, _ := tn.storage.FirstIndex(); first != applied {
		t.Fatalf("follower first index %d, want %d", first, applied)
	}
	if got, want := n.logTerms(3), n.logTerms(1); !slices.Equal(got, want) {
		t.Fatalf("follower log %v, leader %v", got, want)
	}
	if tn.appliedIndex() != applied || n.core(1).prs[3].state != stateReplicate {
		t.Fatalf("follower applied %d (want %d), progress %v", tn.appliedIndex(), applied, n.core(1).prs[3])
	}
	n.propose(1, "f")
	if got := n.appliedData(3); !slices.Equal(got, []string{"e", "f"}) {
		t.Fatalf("follower applied after snapshot %v", got)
	}
}

func TestReportSnapshotAndUnreachable(t *testing.T) {
	n := newNetwork(t, 9, ids(3), nil)
	n.manualSnapshotReports = true
	n.elect(1)
	n.isolate(3)
	n.propose(1, "a")
	n.propose(1, "b")
	_ = n.nodes[1].storage.Compact(n.nodes[1].appliedIndex())
	// 3 answers a heartbeat (so it counts as active) but never the snapshot.
	n.cut = map[[2]uint64]bool{}
	n.filter = func(m Message) (Message, bool) { return m, m.Type != MsgSnap }
	n.tick(2)
	pr := n.core(1).prs[3]
	if pr.state != stateSnapshot {
		t.Fatalf("progress %v, want snapshot", pr)
	}
	n.tick(5)
	if pr.state != stateSnapshot {
		t.Fatalf("left snapshot state without a report: %v", pr)
	}
	n.core(1).ReportSnapshot(3, false)
	if pr.state != stateProbe || !pr.isPaused() {
		t.Fatalf("after a failed snapshot: %v, want paused probe", pr)
	}
	n.filter = nil
	n.tick(3)
	if pr.state != stateReplicate || n.nodes[3].appliedIndex() != n.nodes[1].appliedIndex() {
		t.Fatalf("follower not caught up after retry: %v", pr)
	}
	n.core(1).ReportUnreachable(3)
	if pr.state != stateProbe {
		t.Fatalf("unreachable peer still in %v", pr.state)
	}
}

func TestRestartKeepsTermAndVote(t *testing.T) {
	n := newNetwork(t, 21, ids(3), nil)
	// vote asks node 3 for its vote; persist says whether the Ready
	// carrying the answer reaches the disk before the next step.
	vote := func(from, term uint64, persist bool) (granted, answered bool) {
		c := n.core(3)
		_ = c.Step(Message{Type: MsgVote, From: from, To: 3, Term: term, Index: c.log.lastIndex(), LogTerm: c.log.lastTerm()})
		rd := c.Ready()
		if persist {
			persistReady(t, n.nodes[3].storage, rd)
			c.Advance(rd)
		}
		for _, m := range rd.Messages {
			if m.Type == MsgVoteResp {
				return !m.Reject, true
			}
		}
		return false, false
	}
	if g, _ := vote(1, 5, false); !g {
		t.Fatal("first vote in term 5 refused")
	}
	// Crash before the Ready was persisted: the vote is lost with the
	// answer that was never sent.
	n.restart(3)
	if st := n.core(3).Status(); st.Term != 0 || st.Vote != None {
		t.Fatalf("unpersisted vote survived a crash: %+v", st)
	}
	if g, _ := vote(2, 5, true); !g {
		t.Fatal("vote refused after the unsent one was lost")
	}
	n.restart(3)
	if st := n.core(3).Status(); st.Term != 5 || st.Vote != 2 {
		t.Fatalf("restarted with term %d vote %d, want 5/2", st.Term, st.Vote)
	}
	if g, ok := vote(1, 5, true); g || !ok {
		t.Fatalf("voted twice in term 5 after restart (granted=%v answered=%v)", g, ok)
	}
	if g, _ := vote(2, 5, true); !g {
		t.Fatal("repeated request of the same candidate refused")
	}
}

func TestRestartWholeCluster(t *testing.T) {
	n := newNetwork(t, 23, ids(3), func(c *Config) { c.PreVote = true; c.CheckQuorum = true })
	n.elect(1)
	n.propose(1, "a")
	n.propose(1, "b")
	term := n.core(1).term
	for _, id := range ids(3) {
		n.restart(id)
		if st := n.core(id).Status(); st.Term != term || st.Role != RoleFollower || st.Applied != n.nodes[id].appliedIndex() {
			t.Fatalf("node %d restarted as %+v", id, st)
		}
	}
	n.tick(40)
	lead := n.leader()
	if lead == None || n.core(lead).term <= term {
		t.Fatalf("no new leader after restart:\n%v", n)
	}
	n.propose(lead, "c")
	for _, id := range ids(3) {
		if got := n.appliedData(id); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Fatalf("node %d applied %v", id, got)
		}
	}
}

func TestStatus(t *testing.T) {
	n := newNetwork(t, 1, ids(3), nil)
	n.elect(2)
	n.propose(2, "x")
	st := n.core(2).Status()
	if st.ID != 2 || st.Role != RoleLeader || st.Lead != 2 || st.Term != 1 || st.Vote != 2 ||
		st.Commit != 2 || st.Applied != 2 || st.LastIndex != 2 {
		t.Fatalf("leader status %+v", st)
	}
	for _, id := range ids(3) {
		if p := st.Progress[id]; p.Match != 2 || p.Next != 3 {
			t.Fatalf("progress of %d: %+v", id, p)
		}
	}
	if fs := n.core(3).Status(); fs.Role != RoleFollower || fs.Lead != 2 || fs.Progress != nil || fs.Commit != 2 {
		t.Fatalf("follower status %+v", fs)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := func() Config { return testConfig(1, ids(3), NewMemoryStorage(), 1) }
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no id", func(c *Config) { c.ID = None }},
		{"no storage", func(c *Config) { c.Storage = nil }},
		{"no rand", func(c *Config) { c.Rand = nil }},
		{"heartbeat not below election", func(c *Config) { c.HeartbeatTicks = c.ElectionTicks }},
		{"zero heartbeat", func(c *Config) { c.HeartbeatTicks = 0 }},
		{"zero max size", func(c *Config) { c.MaxSizePerMsg = 0 }},
		{"zero inflight", func(c *Config) { c.MaxInflightMsgs = 0 }},
		{"duplicate peer", func(c *Config) { c.Peers = []uint64{1, 2, 2} }},
	}
	for _, tt := range tests {
		cfg := good()
		tt.edit(&cfg)
		if _, err := New(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: err %v, want ErrBadConfig", tt.name, err)
		}
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("good config: %v", err)
	}
}

// TestRecentActiveFollowsAnswers: a leader reports a follower recently
// active only while it heard from it within the last election timeout, so
// a follower that died a while ago is told apart from live ones even when
// its match index is as high as theirs.
func TestRecentActiveFollowsAnswers(t *testing.T) {
	n := newNetwork(t, 31, ids(3), func(c *Config) { c.PreVote = true; c.CheckQuorum = true })
	n.elect(1)
	n.propose(1, "a")
	st := n.core(1).Status()
	for _, id := range ids(3) {
		if !st.Progress[id].RecentActive {
			t.Fatalf("peer %d not recently active right after answering: %+v", id, st.Progress)
		}
	}
	n.isolate(3)
	// Still active until a whole election timeout (10 ticks) has passed
	// since its last answer.
	n.tick(9, 1, 2)
	if pr := n.core(1).Status().Progress[3]; !pr.RecentActive {
		t.Fatalf("peer 3 inactive after 9 ticks: %+v", pr)
	}
	n.tick(1, 1, 2)
	st = n.core(1).Status()
	if pr := st.Progress[3]; pr.RecentActive || pr.Match != st.Progress[2].Match {
		t.Fatalf("peer 3 after 10 silent ticks: %+v (peer 2 %+v), want inactive with the same match", pr, st.Progress[2])
	}
	if !st.Progress[1].RecentActive || !st.Progress[2].RecentActive || n.leader() != 1 {
		t.Fatalf("leader or live peer inactive, or leader lost: %+v\n%v", st.Progress, n)
	}
	n.heal()
	n.tick(1, 1, 2, 3)
	if pr := n.core(1).Status().Progress[3]; !pr.RecentActive {
		t.Fatalf("peer 3 inactive after answering again: %+v", pr)
	}
}

// TestLeaderActive: Status.LeaderActive (what /readyz needs) holds on a
// leader while a quorum answers and on a follower while it hears from its
// leader; an isolated follower loses it after an election timeout, and so
// does a leader whose followers all went silent. Seed 41.
func TestLeaderActive(t *testing.T) {
	n := newNetwork(t, 41, ids(3), func(c *Config) { c.PreVote = true; c.CheckQuorum = true })
	n.elect(1)
	n.propose(1, "a")
	for _, id := range ids(3) {
		if !n.core(id).Status().LeaderActive {
			t.Fatalf("node %d: LeaderActive false in a healthy cluster: %+v", id, n.core(id).Status())
		}
	}
	n.isolate(3)
	n.tick(10, 1, 2, 3)
	if st := n.core(3).Status(); st.LeaderActive {
		t.Fatalf("isolated follower still LeaderActive after an election timeout: %+v", st)
	}
	if !n.core(1).Status().LeaderActive || !n.core(2).Status().LeaderActive {
		t.Fatalf("majority side lost LeaderActive: %+v %+v", n.core(1).Status(), n.core(2).Status())
	}
	n.heal()
	n.isolate(1)
	n.tick(10, 1)
	if st := n.core(1).Status(); st.Role == RoleLeader && st.LeaderActive {
		t.Fatalf("leader cut off from both followers still LeaderActive: %+v", st)
	}
}
