package raftlog

import (
	"errors"
	"testing"
)

func ids(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

func TestElectionByTimeout(t *testing.T) {
	tests := []struct {
		size    int
		preVote bool
	}{
		{1, false}, {3, false}, {5, false}, {7, false},
		{1, true}, {3, true}, {5, true}, {7, true},
	}
	for _, tt := range tests {
		for seed := int64(1); seed <= 5; seed++ {
			n := newNetwork(t, seed, ids(tt.size), func(c *Config) { c.PreVote = tt.preVote; c.CheckQuorum = true })
			n.tick(30)
			lead := n.leader()
			if lead == None {
				t.Fatalf("size %d preVote %v seed %d: no leader:\n%v", tt.size, tt.preVote, seed, n)
			}
			term := n.core(lead).term
			for _, id := range n.ids {
				c := n.core(id)
				if c.Lead() != lead || c.term != term {
					t.Fatalf("size %d seed %d: node %d has lead %d term %d, want %d/%d", tt.size, seed, id, c.Lead(), c.term, lead, term)
				}
				// The leader's no-op is committed and applied everywhere.
				if st := c.Status(); st.Applied == 0 || st.Applied != st.Commit || c.log.termOrZero(st.Commit) != term {
					t.Fatalf("size %d seed %d: node %d status %+v: no-op of term %d not applied", tt.size, seed, id, st, term)
				}
			}
			n.propose(lead, "hello")
			for _, id := range n.ids {
				if got := n.appliedData(id); len(got) != 1 || got[0] != "hello" {
					t.Fatalf("size %d seed %d: node %d applied %v", tt.size, seed, id, got)
				}
			}
		}
	}
}

func TestSplitVoteResolves(t *testing.T) {
	for seed := int64(1); seed <= 10; seed++ {
		n := newNetwork(t, seed, ids(4), nil)
		// 1 reaches only 3, 2 reaches only 4: two votes each, quorum is 3.
		n.cut[[2]uint64{1, 4}] = true
		n.cut[[2]uint64{2, 3}] = true
		n.cut[[2]uint64{1, 2}] = true
		n.cut[[2]uint64{2, 1}] = true
		_ = n.core(1).Campaign()
		_ = n.core(2).Campaign()
		n.stabilize()
		for _, id := range []uint64{1, 2} {
			if r := n.core(id).Role(); r != RoleCandidate {
				t.Fatalf("seed %d: node %d is %v after the split vote, want candidate", seed, id, r)
			}
		}
		n.heal()
		n.tick(40)
		lead := n.leader()
		if lead == None || n.core(lead).term < 2 {
			t.Fatalf("seed %d: split vote did not resolve:\n%v", seed, n)
		}
	}
}

func TestVoteOncePerTerm(t *testing.T) {
	tests := []struct {
		name      string
		msgType   MessageType
		from      uint64
		term      uint64
		lastIndex uint64
		lastTerm  uint64
		reject    bool
		ignored   bool
	}{
		{"first vote", MsgVote, 2, 5, 10, 3, false, false},
		{"same candidate again", MsgVote, 2, 5, 10, 3, false, false},
		{"other candidate same term", MsgVote, 3, 5, 10, 3, true, false},
		{"stale log newer term", MsgVote, 3, 6, 9, 3, true, false},
		{"lower last term", MsgVote, 3, 7, 20, 2, true, false},
		{"up to date newer term", MsgVote, 3, 8, 10, 3, false, false},
		{"pre-vote does not bind", MsgPreVote, 2, 9, 10, 3, false, false},
		{"old term is ignored", MsgVote, 2, 7, 10, 3, false, true},
	}
	st := NewMemoryStorage()
	ents := make([]Entry, 10)
	for i := range ents {
		ents[i] = Entry{Index: uint64(i + 1), Term: 3}
	}
	_ = st.Append(ents)
	_ = st.SetHardState(HardState{Term: 4})
	c, err := New(testConfig(1, ids(3), st, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		_ = c.Step(Message{Type: tt.msgType, From: tt.from, To: 1, Term: tt.term, Index: tt.lastIndex, LogTerm: tt.lastTerm})
		rd := c.Ready()
		c.Advance(rd)
		if tt.ignored {
			if len(rd.Messages) != 0 {
				t.Fatalf("%s: answered %+v", tt.name, rd.Messages)
			}
			continue
		}
		if len(rd.Messages) != 1 {
			t.Fatalf("%s: %d messages, want 1 response", tt.name, len(rd.Messages))
		}
		if m := rd.Messages[0]; m.Reject != tt.reject || m.Type != voteRespType(tt.msgType) {
			t.Fatalf("%s: response %+v, want reject=%v", tt.name, m, tt.reject)
		}
	}
}

func TestPreVoteRejoiningNodeDoesNotDisrupt(t *testing.T) {
	tests := []struct {
		preVote     bool
		wantDisrupt bool
	}{
		{preVote: true, wantDisrupt: false},
		{preVote: false, wantDisrupt: true},
	}
	for _, tt := range tests {
		n := newNetwork(t, 7, ids(3), func(c *Config) { c.PreVote = tt.preVote })
		n.elect(1)
		term := n.core(1).term
		n.isolate(3)
		n.tick(100)
		if got := n.core(3).term; (got > term) != tt.wantDisrupt {
			t.Fatalf("preVote=%v: isolated node's term %d (leader's %d)", tt.preVote, got, term)
		}
		n.propose(1, "while partitioned")
		n.heal()
		n.tick(50)
		lead := n.leader()
		disrupted := lead != 1 || n.core(lead).term != term
		if disrupted != tt.wantDisrupt {
			t.Fatalf("preVote=%v: disrupted=%v (leader %d, term %d was %d):\n%v",
				tt.preVote, disrupted, lead, n.core(lead).term, term, n)
		}
		if got := n.appliedData(3); len(got) != 1 {
			t.Fatalf("preVote=%v: rejoined node applied %v", tt.preVote, got)
		}
	}
}

func TestCheckQuorumStepDown(t *testing.T) {
	for _, checkQuorum := range []bool{true, false} {
		n := newNetwork(t, 11, ids(3), func(c *Config) { c.CheckQuorum = checkQuorum })
		n.elect(1)
		n.isolate(1)
		n.tick(2*10+1, 1)
		stepped := n.core(1).Role() != RoleLeader
		if stepped != checkQuorum {
			t.Fatalf("checkQuorum=%v: leader cut off for two election timeouts is %v", checkQuorum, n.core(1).Role())
		}
		if checkQuorum {
			if err := n.core(1).Propose([]byte("x")); !errors.Is(err, ErrProposalDropped) {
				t.Fatalf("deposed leader accepted a proposal: %v", err)
			}
		}
	}
}

func TestCheckQuorumLease(t *testing.T) {
	n := newNetwork(t, 13, ids(3), func(c *Config) { c.CheckQuorum = true })
	n.elect(1)
	term := n.core(1).term
	// A node that was cut off, bumped its term and returns with a request.
	for _, id := range []uint64{2, 1} {
		_ = n.core(id).Step(Message{Type: MsgVote, From: 3, To: id, Term: term + 5,
			Index: n.core(3).log.lastIndex(), LogTerm: n.core(3).log.lastTerm()})
	}
	n.stabilize()
	if n.core(2).term != term || n.leader() != 1 {
		t.Fatalf("a vote request broke the lease:\n%v", n)
	}
	// Once the followers have not heard from the leader for an election
	// timeout, the same request is answered.
	n.isolate(1)
	n.tick(10, 2)
	_ = n.core(2).Step(Message{Type: MsgVote, From: 3, To: 2, Term: term + 5,
		Index: n.core(3).log.lastIndex(), LogTerm: n.core(3).log.lastTerm()})
	if n.core(2).term != term+5 || n.core(2).vote != 3 {
		t.Fatalf("vote after the lease expired: term %d vote %d", n.core(2).term, n.core(2).vote)
	}
}

func TestStaleLeaderStepsDown(t *testing.T) {
	n := newNetwork(t, 17, ids(3), func(c *Config) { c.PreVote = true; c.CheckQuorum = true })
	n.elect(1)
	n.isolate(1)
	n.tick(30, 2, 3)
	lead := n.leader()
	if lead == 1 || lead == None {
		t.Fatalf("no new leader while 1 is cut off:\n%v", n)
	}
	n.heal()
	// 1 still believes it leads; its heartbeat gets a newer-term answer.
	_ = n.core(1).Step(Message{Type: MsgBeat})
	n.stabilize()
	if n.core(1).Role() != RoleFollower || n.core(1).term != n.core(lead).term {
		t.Fatalf("stale leader did not step down:\n%v", n)
	}
}
