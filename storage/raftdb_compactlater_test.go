package storage

import (
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

// A compaction scheduled with CompactLater deletes, in each later Save's
// transaction, compactPerStep entries more than that Save appends (so a
// log of large batches cannot outgrow it), and compactPerStep in a
// CompactStep when no Save came. It moves the base with them, keeps every
// entry above the base readable, and a reopen at any point finds a
// consistent, shorter compaction.
func TestRaftDBCompactLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	r := openTestRaftDB(t, path)
	const last = 3*compactPerStep + 100
	if err := r.Save(raftlog.HardState{Term: 2}, append(ents(1, 50, 1), ents(51, last, 2)...)); err != nil {
		t.Fatal(err)
	}
	if err := r.CompactLater(last - 10); !errors.Is(err, errNotCovered) {
		t.Fatalf("CompactLater past the snapshot: %v, want errNotCovered", err)
	}
	if _, err := r.CreateSnapshot(last-10, raftlog.ConfState{Voters: []uint64{1}}); err != nil {
		t.Fatal(err)
	}
	target := uint64(2*compactPerStep + 7)
	if err := r.CompactLater(target); err != nil {
		t.Fatal(err)
	}
	first := func(r *RaftDB) uint64 {
		t.Helper()
		f, err := r.FirstIndex()
		if err != nil {
			t.Fatal(err)
		}
		// Everything from the base up is there, with its term.
		v := viewOf(t, r)
		if v.Last != r.lastIndex || uint64(len(v.Ents)) != v.Last-f+1 {
			t.Fatalf("log holds %d entries from %d to %d", len(v.Ents), f, v.Last)
		}
		return f
	}
	if f := first(r); f != 1 {
		t.Fatalf("FirstIndex right after CompactLater = %d, want 1 (nothing deleted yet)", f)
	}
	next := uint64(last + 1)
	save := func() {
		t.Helper()
		if err := r.Save(raftlog.HardState{}, ents(next, next, 2)); err != nil {
			t.Fatal(err)
		}
		next++
	}
	save()
	// One entry appended, compactPerStep+1 deleted.
	if f := first(r); f != compactPerStep+2 {
		t.Fatalf("FirstIndex after one Save = %d, want %d", f, compactPerStep+2)
	}
	// A Save took the step: the tick's CompactStep right after does nothing.
	if err := r.CompactStep(); err != nil {
		t.Fatal(err)
	}
	if f := first(r); f != compactPerStep+2 {
		t.Fatalf("FirstIndex after a CompactStep that follows a Save = %d, want %d", f, compactPerStep+2)
	}
	// A crash here keeps what the steps so far made durable.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openTestRaftDB(t, path)
	if f := first(r); f != compactPerStep+2 {
		t.Fatalf("FirstIndex after a reopen = %d, want %d", f, compactPerStep+2)
	}
	if term, err := r.Term(compactPerStep + 1); err != nil || term != 2 {
		t.Fatalf("Term(base) after a reopen = %d, %v; want 2", term, err)
	}
	// The schedule was in memory: a reopened store compacts only when asked
	// again. No Save now: the ticks' CompactSteps finish it.
	if err := r.CompactLater(target); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		if err := r.CompactStep(); err != nil {
			t.Fatal(err)
		}
	}
	if f := first(r); f != target+1 {
		t.Fatalf("FirstIndex after the steps = %d, want %d", f, target+1)
	}
	if term, err := r.Term(target); err != nil || term != 2 {
		t.Fatalf("Term(base %d) = %d, %v; want 2", target, term, err)
	}
	if _, err := r.Entries(target, target+1, math.MaxUint64); !errors.Is(err, raftlog.ErrCompacted) {
		t.Fatalf("Entries at the base: %v, want ErrCompacted", err)
	}
	save() // nothing left to compact: a plain Save
	if f := first(r); f != target+1 {
		t.Fatalf("FirstIndex after the compaction ended = %d, want %d", f, target+1)
	}
	if err := r.CompactLater(target); !errors.Is(err, raftlog.ErrCompacted) {
		t.Fatalf("CompactLater at the base: %v, want ErrCompacted", err)
	}
	// A large batch deletes compactPerStep more than it appends.
	if err := r.Save(raftlog.HardState{}, ents(next, next+1999, 2)); err != nil {
		t.Fatal(err)
	}
	next += 2000
	if _, err := r.CreateSnapshot(next-1, raftlog.ConfState{Voters: []uint64{1}}); err != nil {
		t.Fatal(err)
	}
	if err := r.CompactLater(next - 1); err != nil {
		t.Fatal(err)
	}
	before := first(r)
	if err := r.Save(raftlog.HardState{}, ents(next, next+599, 2)); err != nil {
		t.Fatal(err)
	}
	if f := first(r); f != before+600+compactPerStep {
		t.Fatalf("FirstIndex after a Save of 600 = %d, want %d", f, before+600+compactPerStep)
	}
}
