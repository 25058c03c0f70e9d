package raftlog

import (
	"errors"
	"slices"
	"testing"
)

// grow builds a cluster of size voters from one node, one server at a
// time (add as a learner, then promote), with node 1 leading. Seed 1.
func grow(t *testing.T, size int, opt func(*Config)) *network {
	t.Helper()
	n := newNetwork(t, 1, ids(1), opt)
	n.stabilize()
	for id := uint64(2); id <= uint64(size); id++ {
		n.join(id, opt)
		if err := n.change(1, ConfAddLearner, id); err != nil {
			t.Fatalf("add %d: %v", id, err)
		}
		if err := n.change(1, ConfPromote, id); err != nil {
			t.Fatalf("promote %d: %v", id, err)
		}
	}
	return n
}

func wantConf(t *testing.T, n *network, id uint64, voters, learners []uint64) {
	t.Helper()
	got := n.core(id).Conf()
	if !got.Equal(ConfState{Voters: voters, Learners: learners}) {
		t.Fatalf("node %d: membership %v, want voters %v learners %v", id, got, voters, learners)
	}
}

func TestConfChangeOneAtATime(t *testing.T) {
	n := grow(t, 3, nil)
	n.join(4, nil)
	// Node 1 hears no answers: its change cannot commit.
	n.cut[[2]uint64{2, 1}], n.cut[[2]uint64{3, 1}] = true, true
	if err := n.change(1, ConfAddLearner, 4); err != nil {
		t.Fatal(err)
	}
	wantConf(t, n, 1, []uint64{1, 2, 3}, []uint64{4}) // in force when appended
	if err := n.change(1, ConfRemove, 3); !errors.Is(err, ErrBadConfChange) {
		t.Fatalf("second change while the first is uncommitted: %v, want ErrBadConfChange", err)
	}
	n.heal()
	n.tick(2)
	if err := n.change(1, ConfRemove, 3); err != nil {
		t.Fatalf("change after the first committed: %v", err)
	}
	wantConf(t, n, 2, []uint64{1, 2}, []uint64{4})

	// Two changes in one proposal are refused as a whole.
	two := []Entry{
		{Type: EntryConfChange, Data: ConfChange{Type: ConfRemove, ID: 4, After: ConfState{Voters: []uint64{1, 2}}}.Marshal()},
		{Type: EntryConfChange, Data: ConfChange{Type: ConfRemove, ID: 2, After: ConfState{Voters: []uint64{1}}}.Marshal()},
	}
	if err := n.core(1).Step(Message{Type: MsgProp, From: 1, Entries: two}); !errors.Is(err, ErrBadConfChange) {
		t.Fatalf("two changes in one proposal: %v", err)
	}
	// Nonsense is refused: adding a member, removing a stranger, promoting
	// a voter, removing the last voter.
	for _, cc := range []ConfChange{{Type: ConfAddLearner, ID: 2}, {Type: ConfRemove, ID: 9}, {Type: ConfPromote, ID: 2}} {
		if err := n.core(1).ProposeConfChange(cc); !errors.Is(err, ErrBadConfChange) {
			t.Errorf("%v %d: %v, want ErrBadConfChange", cc.Type, cc.ID, err)
		}
	}
	if _, err := (ConfState{Voters: []uint64{1}}).Apply(ConfChange{Type: ConfRemove, ID: 1}); !errors.Is(err, ErrBadConfChange) {
		t.Errorf("removing the last voter: %v", err)
	}
	if err := n.core(2).ProposeConfChange(ConfChange{Type: ConfRemove, ID: 4}); !errors.Is(err, ErrProposalDropped) {
		t.Errorf("change on a follower: %v", err)
	}
}

// A new leader accepts no change before it commits an entry of its term:
// an uncommitted change of an earlier term may be in its log.
func TestNewLeaderNoChangeBeforeCommitInTerm(t *testing.T) {
	n := grow(t, 3, nil)
	// Node 2 wins, but hears no append answers: its no-op stays uncommitted.
	n.filter = func(m Message) (Message, bool) { return m, !(m.Type == MsgAppResp && m.To == 2) }
	n.elect(2)
	n.join(4, nil)
	if err := n.core(2).ProposeConfChange(ConfChange{Type: ConfAddLearner, ID: 4}); !errors.Is(err, ErrBadConfChange) {
		t.Fatalf("change before the no-op commits: %v, want ErrBadConfChange", err)
	}
	n.filter = nil
	n.tick(2)
	if err := n.change(2, ConfAddLearner, 4); err != nil {
		t.Fatalf("change after the no-op commits: %v", err)
	}
}

func TestLearnerNeverCountsTowardQuorumOrVotes(t *testing.T) {
	n := grow(t, 2, func(c *Config) { c.CheckQuorum = true })
	n.join(3, func(c *Config) { c.CheckQuorum = true })
	if err := n.change(1, ConfAddLearner, 3); err != nil {
		t.Fatal(err)
	}
	commit := n.core(1).log.committed
	n.isolate(2) // voters {1,2}: 1 alone is no majority, learner 3 is no help
	n.cut[[2]uint64{1, 3}], n.cut[[2]uint64{3, 1}] = false, false
	if err := n.core(1).Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	n.stabilize()
	if got := n.core(1).log.committed; got != commit {
		t.Fatalf("commit moved %d -> %d with only the leader and a learner", commit, got)
	}
	if m := n.core(1).prs[3].match; m != n.core(1).log.lastIndex() {
		t.Fatalf("learner match %d, want %d: it should hold the entry", m, n.core(1).log.lastIndex())
	}
	// A read index needs a majority of voters: the learner's ack is not one.
	n.core(1).ReadIndex([]byte("r"))
	n.stabilize()
	if len(n.nodes[1].readStates) != 0 {
		t.Fatalf("read served with only a learner's ack: %v", n.nodes[1].readStates)
	}
	// A learner never campaigns.
	for range 100 {
		n.core(3).Tick()
	}
	n.stabilize()
	if n.core(3).Role() != RoleFollower {
		t.Fatalf("learner became %v", n.core(3).Role())
	}
	// CheckQuorum: the learner's answers do not keep the leader in office.
	n.tick(30, 1, 3)
	if n.core(1).Role() == RoleLeader {
		t.Fatal("leader kept office on a learner's answers alone")
	}
	// A learner's vote does not count.
	c := n.core(2)
	_ = c.Campaign()
	c.Step(Message{Type: MsgVoteResp, From: 3, To: 2, Term: c.term})
	if c.Role() == RoleLeader {
		t.Fatal("candidate won with a learner's vote")
	}
	n.heal()
	n.tick(40)
	if n.leader() == None {
		t.Fatal("no leader after heal")
	}
	if n.leader() == 3 {
		t.Fatal("the learner leads")
	}
}

func TestPromoteOnlyWhenCaughtUp(t *testing.T) {
	opt := func(c *Config) { c.MaxPromoteLag = 2 }
	n := grow(t, 3, opt)
	n.join(4, opt)
	n.cut[[2]uint64{1, 4}] = true
	if err := n.change(1, ConfAddLearner, 4); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "b", "c", "d"} {
		n.propose(1, d)
	}
	if err := n.change(1, ConfPromote, 4); !errors.Is(err, ErrBadConfChange) {
		t.Fatalf("promoting a learner that lags: %v, want ErrBadConfChange", err)
	}
	wantConf(t, n, 1, []uint64{1, 2, 3}, []uint64{4})
	n.heal()
	n.tick(2)
	if err := n.change(1, ConfPromote, 4); err != nil {
		t.Fatalf("promoting a learner that caught up: %v", err)
	}
	wantConf(t, n, 4, []uint64{1, 2, 3, 4}, nil)
	if got := n.appliedData(4); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("node 4 applied %v", got)
	}
}

func TestRemoveLeader(t *testing.T) {
	for _, prevote := range []bool{false, true} {
		opt := func(c *Config) { c.PreVote, c.CheckQuorum = prevote, prevote }
		n := grow(t, 3, opt)
		n.propose(1, "before")
		if err := n.change(1, ConfRemove, 1); err != nil {
			t.Fatal(err)
		}
		if n.core(1).Role() == RoleLeader {
			t.Fatalf("prevote=%v: node 1 still leads after its removal committed", prevote)
		}
		n.tick(30)
		lead := n.leader()
		if lead != 2 && lead != 3 {
			t.Fatalf("prevote=%v: leader %d after removing 1", prevote, lead)
		}
		term := n.core(lead).term
		n.propose(lead, "after")
		wantConf(t, n, 2, []uint64{2, 3}, nil)
		wantConf(t, n, 1, []uint64{2, 3}, nil)
		// The removed node ticks on and never campaigns, and nobody moves.
		n.tick(100)
		if n.core(1).Role() != RoleFollower || n.leader() != lead || n.core(lead).term != term {
			t.Fatalf("prevote=%v: after ticks: %v", prevote, n)
		}
		if got := n.appliedData(3); !slices.Equal(got, []string{"before", "after"}) {
			t.Fatalf("node 3 applied %v", got)
		}
	}
}

// The leader appends a change, then crashes before anyone else has it: the
// next leader overwrites the entry and the change is undone everywhere.
func TestChangeLostInLeaderCrashBeforeCommit(t *testing.T) {
	n := grow(t, 3, nil)
	n.cut[[2]uint64{1, 2}], n.cut[[2]uint64{1, 3}] = true, true
	if err := n.change(1, ConfRemove, 3); err != nil {
		t.Fatal(err)
	}
	wantConf(t, n, 1, []uint64{1, 2}, nil)
	n.restart(1)
	wantConf(t, n, 1, []uint64{1, 2}, nil) // rebuilt from its log
	n.isolate(1)
	n.elect(2)
	n.propose(2, "x")
	n.heal()
	n.tick(3)
	for id := uint64(1); id <= 3; id++ {
		wantConf(t, n, id, []uint64{1, 2, 3}, nil)
	}
	if n.leader() != 2 {
		t.Fatalf("leader %d", n.leader())
	}
}

// The leader commits a change and crashes before the others learn it is
// committed: the next leader has it (it is committed) and keeps it.
func TestChangeKeptAfterLeaderCrashAfterCommit(t *testing.T) {
	n := grow(t, 5, nil)
	idx := n.core(1).log.lastIndex() + 1
	n.cut[[2]uint64{1, 4}], n.cut[[2]uint64{1, 5}] = true, true
	// 2 and 3 get the entry, but not the commit index that covers it.
	n.filter = func(m Message) (Message, bool) {
		return m, !(m.From == 1 && m.Commit >= idx)
	}
	if err := n.change(1, ConfRemove, 5); err != nil {
		t.Fatal(err)
	}
	if n.core(1).log.committed < idx || n.core(2).log.committed >= idx {
		t.Fatalf("setup: commit on 1 is %d, on 2 is %d, change at %d", n.core(1).log.committed, n.core(2).log.committed, idx)
	}
	n.filter = nil
	n.heal()
	n.restart(1)
	n.isolate(1)
	n.tick(40, 2, 3, 4, 5)
	lead := n.leader()
	if lead != 2 && lead != 3 {
		t.Fatalf("leader %d, want 2 or 3 (they hold the change)", lead)
	}
	n.heal()
	n.propose(lead, "x")
	n.tick(3)
	for _, id := range []uint64{1, 2, 3, 4} {
		wantConf(t, n, id, []uint64{1, 2, 3, 4}, nil)
		if n.nodes[id].appliedIndex() <= idx {
			t.Fatalf("node %d applied %d, change at %d", id, n.nodes[id].appliedIndex(), idx)
		}
	}
}

// A removed node that does not know it was removed campaigns forever; with
// or without PreVote, nobody changes term or leader for it.
func TestRemovedNodeCannotDisrupt(t *testing.T) {
	for _, prevote := range []bool{false, true} {
		opt := func(c *Config) { c.PreVote = prevote }
		n := grow(t, 3, opt)
		n.isolate(3)
		if err := n.change(1, ConfRemove, 3); err != nil {
			t.Fatal(err)
		}
		n.heal()
		wantConf(t, n, 3, []uint64{1, 2, 3}, nil) // it never heard
		term := n.core(1).term
		for range 5 {
			_ = n.core(3).Campaign()
			n.tick(25)
		}
		if n.leader() != 1 || n.core(1).term != term || n.core(2).term != term {
			t.Fatalf("prevote=%v: removed node disrupted: %v", prevote, n)
		}
		// It cannot even move the term through another message type.
		_ = n.core(1).Step(Message{Type: MsgAppResp, From: 3, To: 1, Term: term + 10, Index: 1})
		if n.core(1).term != term || n.core(1).Role() != RoleLeader {
			t.Fatalf("prevote=%v: an answer from a removed node moved the leader", prevote)
		}
	}
}

func TestJoiningNodeNeverCampaigns(t *testing.T) {
	n := newNetwork(t, 1, ids(1), nil)
	n.stabilize()
	n.join(2, nil)
	for range 100 {
		n.core(2).Tick()
	}
	n.stabilize()
	if st := n.core(2).Status(); st.Role != RoleFollower || st.Term != 0 || st.Vote != None {
		t.Fatalf("joining node: %+v", st)
	}
	// It grants no vote either.
	_ = n.core(2).Step(Message{Type: MsgVote, From: 1, To: 2, Term: 5, Index: 9, LogTerm: 4})
	if n.core(2).term != 0 {
		t.Fatalf("joining node took term %d from a vote request", n.core(2).term)
	}
}

// A learner whose entries are compacted away gets a snapshot; the
// snapshot's membership, learners included, becomes its own.
func TestSnapshotCarriesMembership(t *testing.T) {
	n := grow(t, 3, nil)
	for _, d := range []string{"a", "b", "c"} {
		n.propose(1, d)
	}
	if err := n.nodes[1].storage.Compact(n.nodes[1].appliedIndex()); err != nil {
		t.Fatal(err)
	}
	n.join(4, nil)
	if err := n.change(1, ConfAddLearner, 4); err != nil {
		t.Fatal(err)
	}
	n.tick(3)
	snaps := n.nodes[4].snapshots
	if len(snaps) == 0 {
		t.Fatal("node 4 got no snapshot")
	}
	if !snaps[0].Conf.Equal(ConfState{Voters: []uint64{1, 2, 3}}) {
		t.Fatalf("snapshot membership %v", snaps[0].Conf)
	}
	wantConf(t, n, 4, []uint64{1, 2, 3}, []uint64{4})
	// A restart rebuilds the same membership from storage and log.
	n.restart(4)
	wantConf(t, n, 4, []uint64{1, 2, 3}, []uint64{4})
	n.restart(1)
	wantConf(t, n, 1, []uint64{1, 2, 3}, []uint64{4})
}

func TestConfChangeCodec(t *testing.T) {
	cc := ConfChange{Type: ConfAddLearner, ID: 7, Context: []byte(`{"ip":"x"}`), After: ConfState{Voters: []uint64{1, 2}, Learners: []uint64{7}}}
	got, err := UnmarshalConfChange(cc.Marshal())
	if err != nil || got.Type != cc.Type || got.ID != 7 || string(got.Context) != string(cc.Context) || !got.After.Equal(cc.After) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	bad := map[string][]byte{
		"empty":          nil,
		"version":        append([]byte{9}, cc.Marshal()[1:]...),
		"type":           append([]byte{1, 9}, cc.Marshal()[2:]...),
		"trailing":       append(cc.Marshal(), 0),
		"after disagree": ConfChange{Type: ConfRemove, ID: 7, After: cc.After}.Marshal(),
		"no voters":      ConfChange{Type: ConfAddLearner, ID: 7, After: ConfState{Learners: []uint64{7}}}.Marshal(),
		"id zero":        ConfChange{Type: ConfRemove, ID: 0, After: ConfState{Voters: []uint64{1}}}.Marshal(),
	}
	for name, b := range bad {
		if _, err := UnmarshalConfChange(b); !errors.Is(err, ErrCorruptMessage) {
			t.Errorf("%s: %v, want ErrCorruptMessage", name, err)
		}
	}
	// A MsgApp carrying a malformed change entry is refused whole.
	m := Message{Type: MsgApp, From: 1, To: 2, Term: 1, Entries: []Entry{{Index: 1, Term: 1, Type: EntryConfChange, Data: []byte{1}}}}
	if err := ValidateMessage(m); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("MsgApp with a bad change: %v", err)
	}
}
