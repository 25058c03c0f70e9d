package storage

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

// TestMembersSurviveReopen: the members record and a membership with
// learners are durable, and a membership without learners keeps the
// layout it had before learners existed.
func TestMembersSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), RaftDBFile)
	r := openTestRaftDB(t, path)
	m := Members{Addrs: map[uint64]MemberAddr{4: {IP: "10.0.0.4", Port: 1, InternalPort: 2}}, Removed: []uint64{2}, Index: 17}
	cs := raftlog.ConfState{Voters: []uint64{1, 3}, Learners: []uint64{4}}
	if err := r.SetMembers(m, cs); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openTestRaftDB(t, path)
	got := r.Members()
	if got.Index != 17 || !slices.Equal(got.Removed, []uint64{2}) || got.Addrs[4] != m.Addrs[4] {
		t.Fatalf("members after reopen: %+v", got)
	}
	if _, conf, _ := r.InitialState(); !conf.Equal(cs) {
		t.Fatalf("membership after reopen: %v, want %v", conf, cs)
	}
	if b := appendConfState(nil, raftlog.ConfState{Voters: []uint64{1}}); len(b) != 1+8 {
		t.Fatalf("a membership without learners encodes in %d bytes, want the old 9", len(b))
	}
	r.Close()
}
