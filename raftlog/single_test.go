package raftlog

import "testing"

func newSingle(t *testing.T, seed int64) (*Core, *MemoryStorage) {
	t.Helper()
	st := NewMemoryStorage()
	c, err := New(testConfig(1, []uint64{1}, st, seed))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, st
}

// persistReady writes rd to st the way the broker writes it to raft.db.
func persistReady(t *testing.T, st *MemoryStorage, rd Ready) {
	t.Helper()
	if !rd.Snapshot.IsEmpty() {
		if err := st.ApplySnapshot(rd.Snapshot); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Append(rd.Entries); err != nil {
		t.Fatal(err)
	}
	if !rd.HardState.IsEmpty() {
		if err := st.SetHardState(rd.HardState); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSingleNodeCampaignProposeCommit(t *testing.T) {
	c, st := newSingle(t, 1)
	if err := c.Campaign(); err != nil {
		t.Fatal(err)
	}
	if c.Role() != RoleLeader || c.Lead() != 1 {
		t.Fatalf("after campaign: role %v lead %d", c.Role(), c.Lead())
	}

	rd := c.Ready()
	if rd.SoftState == nil || rd.SoftState.Role != RoleLeader {
		t.Fatalf("soft state %+v, want leader", rd.SoftState)
	}
	if rd.HardState != (HardState{Term: 1, Vote: 1}) || !rd.MustSync {
		t.Fatalf("hard state %+v must sync %v, want term 1 vote 1, sync", rd.HardState, rd.MustSync)
	}
	if len(rd.Entries) != 1 || rd.Entries[0].Type != EntryNoop || rd.Entries[0].Index != 1 {
		t.Fatalf("entries %+v, want the no-op at 1", rd.Entries)
	}
	if len(rd.CommittedEntries) != 0 {
		t.Fatalf("committed %+v before the no-op was persisted", rd.CommittedEntries)
	}
	persistReady(t, st, rd)
	c.Advance(rd)

	rd = c.Ready()
	if rd.HardState.Commit != 1 || len(rd.CommittedEntries) != 1 || rd.CommittedEntries[0].Index != 1 {
		t.Fatalf("after advance: hard %+v committed %+v, want the no-op committed", rd.HardState, rd.CommittedEntries)
	}
	persistReady(t, st, rd)
	c.Advance(rd)

	if err := c.Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	rd = c.Ready()
	if len(rd.Entries) != 1 || string(rd.Entries[0].Data) != "x" || rd.Entries[0].Term != 1 || rd.Entries[0].Index != 2 {
		t.Fatalf("entries %+v, want x at 2", rd.Entries)
	}
	if len(rd.CommittedEntries) != 0 || rd.HardState.Commit > 1 {
		t.Fatalf("x committed before it was persisted: %+v", rd)
	}
	if st := c.Status(); st.Commit != 1 {
		t.Fatalf("commit %d before persist, want 1", st.Commit)
	}
	persistReady(t, st, rd)
	c.Advance(rd)

	rd = c.Ready()
	if len(rd.CommittedEntries) != 1 || string(rd.CommittedEntries[0].Data) != "x" || rd.HardState.Commit != 2 {
		t.Fatalf("next ready: committed %+v hard %+v, want x committed", rd.CommittedEntries, rd.HardState)
	}
	if len(rd.Entries) != 0 || len(rd.Messages) != 0 {
		t.Fatalf("one node sends nothing and has nothing new to persist: %+v", rd)
	}
	persistReady(t, st, rd)
	c.Advance(rd)
	if c.HasReady() {
		t.Fatalf("still has ready after everything was handled: %+v", c.Ready())
	}
	if s := c.Status(); s.Applied != 2 || s.Commit != 2 || s.LastIndex != 2 {
		t.Fatalf("status %+v", s)
	}
}

func TestSingleNodeElectsItselfOnTimeout(t *testing.T) {
	for _, preVote := range []bool{false, true} {
		n := newNetwork(t, 3, []uint64{1}, func(c *Config) { c.PreVote = preVote })
		n.tick(2 * 10)
		if n.leader() != 1 {
			t.Fatalf("preVote=%v: no leader after 2 election timeouts:\n%v", preVote, n)
		}
		n.propose(1, "a")
		if got := n.appliedData(1); len(got) != 1 || got[0] != "a" {
			t.Fatalf("preVote=%v: applied %v", preVote, got)
		}
		hs, _, _ := n.nodes[1].storage.InitialState()
		if hs.Term != 1 || hs.Vote != 1 || hs.Commit != 2 {
			t.Fatalf("preVote=%v: persisted hard state %+v", preVote, hs)
		}
	}
}

func TestSingleNodeReadIndex(t *testing.T) {
	c, st := newSingle(t, 2)
	_ = c.Campaign()
	c.ReadIndex([]byte("early"))
	rd := c.Ready()
	if len(rd.ReadStates) != 0 {
		t.Fatalf("answered before the no-op was committed: %+v", rd.ReadStates)
	}
	persistReady(t, st, rd)
	c.Advance(rd)
	rd = c.Ready()
	if len(rd.ReadStates) != 1 || rd.ReadStates[0].Index != 1 || string(rd.ReadStates[0].Context) != "early" {
		t.Fatalf("read states %+v, want early@1", rd.ReadStates)
	}
	persistReady(t, st, rd)
	c.Advance(rd)
	c.ReadIndex([]byte("now"))
	if rd := c.Ready(); len(rd.ReadStates) != 1 || rd.ReadStates[0].Index != 1 {
		t.Fatalf("read states %+v, want now@1 at once", rd.ReadStates)
	}
}

func TestRestartResumesAfterApplied(t *testing.T) {
	tests := []struct {
		applied   uint64
		wantFirst uint64 // first index re-delivered; 0 = none
	}{
		{applied: 3, wantFirst: 0},
		{applied: 1, wantFirst: 2},
		{applied: 0, wantFirst: 1},
	}
	for _, tt := range tests {
		c, st := newSingle(t, 4)
		_ = c.Campaign()
		_ = c.ProposeBatch([][]byte{[]byte("a"), []byte("b")})
		for c.HasReady() {
			rd := c.Ready()
			persistReady(t, st, rd)
			c.Advance(rd)
		}
		cfg := testConfig(1, []uint64{1}, st, 5)
		cfg.Applied = tt.applied
		r, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// A cluster of one leads again at once, in a new term.
		if s := r.Status(); s.Term != 2 || s.Vote != 1 || s.Commit != 3 || s.Role != RoleLeader {
			t.Fatalf("applied %d: restarted status %+v", tt.applied, s)
		}
		rd := r.Ready()
		switch {
		case tt.wantFirst == 0 && len(rd.CommittedEntries) != 0:
			t.Fatalf("applied %d: re-delivered %+v", tt.applied, rd.CommittedEntries)
		case tt.wantFirst != 0 && (len(rd.CommittedEntries) == 0 || rd.CommittedEntries[0].Index != tt.wantFirst):
			t.Fatalf("applied %d: re-delivered %+v, want from %d", tt.applied, rd.CommittedEntries, tt.wantFirst)
		}
	}
}

// TestSingleVoterLeadsFromNew: the only voter campaigns in New, fresh and
// after a restart, so its first Ready already makes it leader; a member of
// a larger cluster starts as a follower and waits for its election timeout.
func TestSingleVoterLeadsFromNew(t *testing.T) {
	c, st := newSingle(t, 7)
	if c.Role() != RoleLeader || c.Lead() != 1 {
		t.Fatalf("fresh single voter: role %v lead %d, want leader", c.Role(), c.Lead())
	}
	rd := c.Ready()
	if rd.SoftState == nil || rd.SoftState.Role != RoleLeader || rd.HardState != (HardState{Term: 1, Vote: 1}) || !rd.MustSync {
		t.Fatalf("first Ready: soft %+v hard %+v sync %v, want leader at term 1 with its vote, synced", rd.SoftState, rd.HardState, rd.MustSync)
	}
	if len(rd.Entries) != 1 || rd.Entries[0].Type != EntryNoop {
		t.Fatalf("first Ready entries %+v, want the no-op", rd.Entries)
	}
	for c.HasReady() {
		persistReady(t, st, rd)
		c.Advance(rd)
		rd = c.Ready()
	}
	if s := c.Status(); s.Commit != 1 {
		t.Fatalf("commit %d after the first Readys, want the no-op committed", s.Commit)
	}

	r, err := New(testConfig(1, []uint64{1}, st, 8))
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Status(); s.Role != RoleLeader || s.Term != 2 {
		t.Fatalf("restarted single voter: %+v, want leader at term 2", s)
	}

	f, err := New(testConfig(1, []uint64{1, 2, 3}, NewMemoryStorage(), 9))
	if err != nil {
		t.Fatal(err)
	}
	if f.Role() != RoleFollower || f.HasReady() {
		t.Fatalf("member of three: role %v has ready %v, want a quiet follower", f.Role(), f.HasReady())
	}
}
