package raftlog

import "testing"

// TestAmnesiaNoticed: a node whose data directory came back empty (term 0,
// no vote, no log) hears from a leader whose messages prove the cluster
// committed entries. It must go into recovering mode before it answers,
// report it in the Ready that carries the answer (so the broker persists
// the flag first), and then refuse to vote a second time in a term it may
// already have voted in. Without noticeAmnesia the node grants the vote.
func TestAmnesiaNoticed(t *testing.T) {
	proofs := []struct {
		name string
		m    Message
	}{
		{"append with commit", Message{Type: MsgApp, From: 1, To: 3, Term: 4, Index: 7, LogTerm: 4, Commit: 7}},
		{"heartbeat with commit", Message{Type: MsgHeartbeat, From: 1, To: 3, Term: 4, Commit: 5}},
		{"snapshot", Message{Type: MsgSnap, From: 1, To: 3, Term: 4, Snapshot: SnapshotMeta{Index: 9, Term: 3, Conf: ConfState{Voters: ids(3)}}}},
	}
	for _, p := range proofs {
		t.Run(p.name, func(t *testing.T) {
			st := NewMemoryStorage()
			st.SetConfState(ConfState{Voters: ids(3)})
			c, err := New(testConfig(3, ids(3), st, 1))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Step(p.m); err != nil {
				t.Fatal(err)
			}
			if !c.Recovering() {
				t.Fatalf("empty node stepped %v (commit %d): not recovering", p.m.Type, p.m.Commit)
			}
			rd := c.Ready()
			if rd.SoftState == nil || !rd.SoftState.Recovering {
				t.Fatalf("the Ready answering the leader does not report recovering: %+v", rd.SoftState)
			}
			c.Advance(rd)
			// A candidate of the same term asks for a vote: the node may
			// have voted for the leader in this term before it lost its data.
			_ = c.Step(Message{Type: MsgVote, From: 2, To: 3, Term: 4, Index: 20, LogTerm: 4})
			rd = c.Ready()
			for _, m := range rd.Messages {
				if m.Type == MsgVoteResp && !m.Reject {
					t.Fatalf("amnesiac node granted a vote: %+v", m)
				}
			}
			c.Advance(rd)
		})
	}
}

// TestAmnesiaNotClaimedWithoutProof: a fresh cluster's first messages
// carry commit 0, and a node with entries is never taken for amnesiac.
func TestAmnesiaNotClaimedWithoutProof(t *testing.T) {
	st := NewMemoryStorage()
	st.SetConfState(ConfState{Voters: ids(3)})
	c, err := New(testConfig(3, ids(3), st, 1))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Step(Message{Type: MsgHeartbeat, From: 1, To: 3, Term: 1})
	_ = c.Step(Message{Type: MsgApp, From: 1, To: 3, Term: 1, Entries: []Entry{{Index: 1, Term: 1}}})
	if c.Recovering() {
		t.Fatal("a fresh node is recovering after commit-0 messages")
	}
	_ = c.Step(Message{Type: MsgApp, From: 1, To: 3, Term: 1, Index: 1, LogTerm: 1, Commit: 1})
	if c.Recovering() {
		t.Fatal("a node holding entries was taken for amnesiac")
	}
}
