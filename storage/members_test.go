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

// TestApplySnapshotWithMembers: the members record a snapshot carries is
// recorded with the log's new base, durably; Merge never forgets a removed
// id or an address the snapshot does not name.
func TestApplySnapshotWithMembers(t *testing.T) {
	path := filepath.Join(t.TempDir(), RaftDBFile)
	r := openTestRaftDB(t, path)
	old := Members{Addrs: map[uint64]MemberAddr{7: {IP: "10.0.0.7"}}, Removed: []uint64{6}, Index: 3}
	if err := r.SetMembers(old, raftlog.ConfState{Voters: []uint64{1}}); err != nil {
		t.Fatal(err)
	}
	snap := Members{Addrs: map[uint64]MemberAddr{4: {IP: "10.0.0.4", Port: 1, InternalPort: 2}}, Removed: []uint64{5}, Index: 40}
	b, err := EncodeMembers(snap)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeMembers(b)
	if err != nil {
		t.Fatal(err)
	}
	merged := dec.Merge(old)
	meta := raftlog.SnapshotMeta{Index: 50, Term: 2, Conf: raftlog.ConfState{Voters: []uint64{1, 4}}}
	if err := r.ApplySnapshotWithMembers(meta, merged); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openTestRaftDB(t, path)
	defer r.Close()
	got := r.Members()
	if got.Index != 40 || !slices.Equal(got.Removed, []uint64{5, 6}) || got.Addrs[4] != snap.Addrs[4] || got.Addrs[7] != old.Addrs[7] {
		t.Fatalf("members after the install and a reopen: %+v", got)
	}
	if s, _ := r.Snapshot(); s.Index != 50 {
		t.Fatalf("snapshot after reopen: %+v", s)
	}
}
