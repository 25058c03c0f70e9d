package raftlog

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestValidateMessage(t *testing.T) {
	ents := func(first, term uint64, n int) []Entry {
		var es []Entry
		for i := range n {
			es = append(es, Entry{Index: first + uint64(i), Term: term, Type: EntryNormal, Data: []byte("x")})
		}
		return es
	}
	tests := []struct {
		name string
		m    Message
		want string // "" = valid; else a substring of the error
	}{
		{"heartbeat", Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: 9, Context: []byte("ctx")}, ""},
		{"append", Message{Type: MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 2, Commit: 99, Entries: ents(5, 3, 3)}, ""},
		{"empty append, commit ahead", Message{Type: MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 2, Commit: 50}, ""},
		{"reject", Message{Type: MsgAppResp, From: 2, To: 1, Term: 3, Index: 7, Reject: true, RejectHint: 5, LogTerm: 2, Commit: 3}, ""},
		{"forwarded read index", Message{Type: MsgReadIndex, From: 2, To: 1, Context: []byte("r")}, ""},
		{"snapshot", Message{Type: MsgSnap, From: 1, To: 2, Term: 3, Snapshot: SnapshotMeta{Index: 10, Term: 2, Conf: ConfState{Voters: []uint64{1, 2, 3}}}}, ""},
		{"max term", Message{Type: MsgVote, From: 1, To: 2, Term: MaxTerm, Index: 3, LogTerm: 1}, ""},

		{"issue 12: term 2^64-1", Message{Type: MsgHeartbeat, From: 1, To: 2, Term: math.MaxUint64}, "term 18446744073709551615 is above"},
		{"term 2^63", Message{Type: MsgHeartbeat, From: 1, To: 2, Term: MaxTerm + 1}, "is above"},
		{"issue 12: entry below index", Message{Type: MsgApp, From: 1, To: 2, Term: 1, Index: 32, LogTerm: 1, Commit: 32, Entries: ents(1, 1, 1)}, "entry 0 has index 1, want 33"},
		{"gap in entries", Message{Type: MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 2, Entries: append(ents(5, 3, 1), ents(7, 3, 1)...)}, "has index 7, want 6"},
		{"entry term decreases", Message{Type: MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 2, Entries: append(ents(5, 3, 1), ents(6, 2, 1)...)}, "below the term"},
		{"entry term below log term", Message{Type: MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 3, Entries: ents(5, 2, 1)}, "below the term"},
		{"entry term above message", Message{Type: MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 2, Entries: ents(5, 4, 1)}, "above the message's term"},
		{"entries pass max index", Message{Type: MsgApp, From: 1, To: 2, Term: 3, Index: MaxIndex, LogTerm: 2, Entries: ents(MaxIndex+1, 3, 1)}, "pass"},
		{"log term above term", Message{Type: MsgVote, From: 1, To: 2, Term: 3, Index: 3, LogTerm: 4}, "log term 4 above"},
		{"no term", Message{Type: MsgApp, From: 1, To: 2}, "no term"},
		{"read index with term", Message{Type: MsgReadIndex, From: 2, To: 1, Term: 5}, "term 5 on a forwarded"},
		{"local type", Message{Type: MsgProp, From: 1, To: 2, Term: 1}, "local"},
		{"unknown type", Message{Type: 77, From: 1, To: 2, Term: 1}, "unknown message type"},
		{"no sender", Message{Type: MsgHeartbeat, To: 2, Term: 1}, "no sender"},
		{"entries on heartbeat", Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 3, Entries: ents(1, 1, 1)}, "carries 1 entries"},
		{"snapshot on append", Message{Type: MsgApp, From: 1, To: 2, Term: 3, Snapshot: SnapshotMeta{Index: 1, Term: 1}}, "carries a snapshot"},
		{"hint without reject", Message{Type: MsgAppResp, From: 1, To: 2, Term: 3, Index: 4, RejectHint: 2}, "reject hint"},
		{"hint beyond index", Message{Type: MsgAppResp, From: 1, To: 2, Term: 3, Index: 4, Reject: true, RejectHint: 9}, "beyond the rejected index"},
		{"long context", Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 3, Context: make([]byte, MaxContextBytes+1)}, "context of"},
		{"snapshot without index", Message{Type: MsgSnap, From: 1, To: 2, Term: 3, Snapshot: SnapshotMeta{Term: 2}}, "without index"},
		{"snapshot term above", Message{Type: MsgSnap, From: 1, To: 2, Term: 3, Snapshot: SnapshotMeta{Index: 5, Term: 4}}, "snapshot term 4"},
		{"snapshot voter 0", Message{Type: MsgSnap, From: 1, To: 2, Term: 3, Snapshot: SnapshotMeta{Index: 5, Term: 3, Conf: ConfState{Voters: []uint64{0, 1}}}}, "reserved"},
		{"snapshot voter twice", Message{Type: MsgSnap, From: 1, To: 2, Term: 3, Snapshot: SnapshotMeta{Index: 5, Term: 3, Conf: ConfState{Voters: []uint64{2, 2}}}}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateMessage(tt.m)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("accepted, want %q", tt.want)
			case tt.want != "" && (!errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want ErrInvalidMessage with %q", err, tt.want)
			}
		})
	}
}

func TestValidateSender(t *testing.T) {
	voters := []uint64{1, 2, 3}
	hb := Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1}
	if err := ValidateSender(hb, 2, voters); err != nil {
		t.Fatal(err)
	}
	snap := Message{Type: MsgSnap, From: 1, To: 2, Term: 1, Snapshot: SnapshotMeta{Index: 3, Term: 1, Conf: ConfState{Voters: []uint64{3, 1, 2}}}}
	if err := ValidateSender(snap, 2, voters); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		m    Message
		self uint64
	}{
		"stranger":        {Message{Type: MsgHeartbeat, From: 9, To: 2, Term: 1}, 2},
		"to another node": {hb, 3},
		"from self":       {Message{Type: MsgHeartbeat, From: 2, To: 2, Term: 1}, 2},
	} {
		if err := ValidateSender(c.m, c.self, voters); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s: got %v, want ErrInvalidMessage", name, err)
		}
	}
}

// issueCluster elects node 1 of a 3-node cluster and commits 32 entries:
// the state the frames of issue 12 were sent into.
func issueCluster(t *testing.T) *network {
	n := forgedNetwork(t)
	n.elect(1)
	for i := range 31 {
		n.propose(1, string(rune('a'+i%26)))
	}
	n.tick(3)
	for _, id := range n.ids {
		if st := n.core(id).Status(); st.Term != 1 || st.Commit != 32 || st.Lead != 1 {
			t.Fatalf("node %d: %+v, want term 1, commit 32, leader 1", id, st)
		}
	}
	return n
}

// TestIssue12FramesAreRefused: the two frames that crashed the cluster are
// refused by the validator and by Step, and change nothing; the cluster
// keeps its leader and commits on. Without the validator the first made
// every node panic (term+1 wrapped in campaign) and the second crashed the
// follower (entry 1 conflicts with committed entry 32).
func TestIssue12FramesAreRefused(t *testing.T) {
	n := issueCluster(t)
	frames := []Message{
		{Type: MsgHeartbeat, From: 1, To: 2, Term: math.MaxUint64},
		{Type: MsgApp, From: 1, To: 2, Term: 1, Index: 32, LogTerm: 1, Commit: 32,
			Entries: []Entry{{Index: 1, Term: 1, Type: EntryNormal, Data: []byte("forged")}}},
	}
	for _, m := range frames {
		if err := ValidateMessage(m); !errors.Is(err, ErrInvalidMessage) {
			t.Fatalf("validator accepts %+v: %v", m, err)
		}
		if err := n.core(2).Step(m); !errors.Is(err, ErrInvalidMessage) {
			t.Fatalf("Step accepts %+v: %v", m, err)
		}
	}
	n.tick(40)
	n.propose(1, "after")
	for _, id := range n.ids {
		if st := n.core(id).Status(); st.Term != 1 || st.Lead != 1 || st.Commit != 33 {
			t.Fatalf("node %d after the forged frames: %+v, want term 1, leader 1, commit 33", id, st)
		}
	}
}

// TestNoCampaignAtMaxTerm: a node whose term is already MaxTerm (a
// heartbeat of that term passes the validator) never campaigns, since the
// next term would pass the bound; it neither panics nor wraps.
func TestNoCampaignAtMaxTerm(t *testing.T) {
	n := issueCluster(t)
	if err := n.core(2).Step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: MaxTerm}); err != nil {
		t.Fatal(err)
	}
	n.tick(100)
	if st := n.core(2).Status(); st.Term != MaxTerm || st.Role == RoleLeader || st.Role == RoleCandidate {
		t.Fatalf("node 2: %+v, want a follower at term %d", st, MaxTerm)
	}
	for _, id := range n.ids {
		if st := n.core(id).Status(); st.Term > MaxTerm || st.Term < 1 {
			t.Fatalf("node %d: term %d out of bounds", id, st.Term)
		}
	}
}

// TestLeaderIgnoresAckBeyondItsLog: an append answer for an index the
// leader never sent once made it look for entries past its log and panic.
func TestLeaderIgnoresAckBeyondItsLog(t *testing.T) {
	n := issueCluster(t)
	if err := n.core(1).Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	n.tick(5)
	n.propose(1, "after")
	if st := n.core(1).Status(); st.Role != RoleLeader || st.Progress[2].Match > st.LastIndex {
		t.Fatalf("leader: %+v", st)
	}
}

// TestNewRefusesTermAboveMax: a storage whose term is out of bounds (a
// forged heartbeat persisted it before validation existed) is refused with
// an error, not a panic later.
func TestNewRefusesTermAboveMax(t *testing.T) {
	st := NewMemoryStorage()
	st.SetConfState(ConfState{Voters: []uint64{1, 2, 3}})
	if err := st.SetHardState(HardState{Term: math.MaxUint64}); err != nil {
		t.Fatal(err)
	}
	_, err := New(testConfig(1, []uint64{1, 2, 3}, st, 1))
	if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "18446744073709551615") {
		t.Fatalf("New: %v, want ErrBadConfig naming the term", err)
	}
}
