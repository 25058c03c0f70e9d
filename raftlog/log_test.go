package raftlog

import (
	"errors"
	"slices"
	"testing"
)

func ents(firstIndex uint64, terms ...uint64) []Entry {
	out := make([]Entry, len(terms))
	for i, t := range terms {
		out[i] = Entry{Index: firstIndex + uint64(i), Term: t, Type: EntryNormal}
	}
	return out
}

func terms(es []Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Term)
	}
	return out
}

func TestUnstableTruncateAndAppend(t *testing.T) {
	tests := []struct {
		name       string
		offset     uint64
		have       []uint64
		appendAt   uint64
		appendTs   []uint64
		wantOffset uint64
		wantTerms  []uint64
	}{
		{"extend", 5, []uint64{1, 1}, 7, []uint64{2, 2}, 5, []uint64{1, 1, 2, 2}},
		{"replace all", 5, []uint64{1, 1}, 5, []uint64{2}, 5, []uint64{2}},
		{"replace below offset", 5, []uint64{1, 1}, 4, []uint64{2, 2}, 4, []uint64{2, 2}},
		{"truncate middle", 5, []uint64{1, 1, 1}, 6, []uint64{3}, 5, []uint64{1, 3}},
	}
	for _, tt := range tests {
		u := unstable{offset: tt.offset, entries: ents(tt.offset, tt.have...)}
		handedOut := u.entries // as a Ready would
		before := terms(handedOut)
		u.truncateAndAppend(ents(tt.appendAt, tt.appendTs...))
		if u.offset != tt.wantOffset || !slices.Equal(terms(u.entries), tt.wantTerms) {
			t.Errorf("%s: offset %d terms %v, want %d %v", tt.name, u.offset, terms(u.entries), tt.wantOffset, tt.wantTerms)
		}
		if !slices.Equal(terms(handedOut), before) {
			t.Errorf("%s: a slice handed out in a Ready was modified", tt.name)
		}
	}
}

func TestUnstableStableTo(t *testing.T) {
	u := unstable{offset: 5, entries: ents(5, 1, 1, 2)}
	u.stableTo(6, 2) // overwritten meanwhile: term differs
	if u.offset != 5 {
		t.Fatalf("stableTo with a stale term moved offset to %d", u.offset)
	}
	u.stableTo(6, 1)
	if u.offset != 7 || len(u.entries) != 1 {
		t.Fatalf("offset %d len %d, want 7 1", u.offset, len(u.entries))
	}
	u.stableTo(7, 2)
	if u.offset != 8 || u.entries != nil {
		t.Fatalf("offset %d entries %v, want 8 nil", u.offset, u.entries)
	}
}

func TestLogMaybeAppend(t *testing.T) {
	tests := []struct {
		name       string
		index, lt  uint64
		commit     uint64
		appendTs   []uint64
		wantOK     bool
		wantLast   uint64
		wantTerms  []uint64
		wantCommit uint64
	}{
		{"prev mismatch", 3, 2, 3, []uint64{4}, false, 0, []uint64{1, 2, 3}, 1},
		{"prev beyond last", 4, 3, 3, []uint64{4}, false, 0, []uint64{1, 2, 3}, 1},
		{"append new", 3, 3, 4, []uint64{4}, true, 4, []uint64{1, 2, 3, 4}, 4},
		{"duplicate keeps suffix", 1, 1, 2, []uint64{2}, true, 2, []uint64{1, 2, 3}, 2},
		{"conflict truncates", 2, 2, 2, []uint64{4, 4}, true, 4, []uint64{1, 2, 4, 4}, 2},
		{"commit capped at last new", 1, 1, 3, nil, true, 1, []uint64{1, 2, 3}, 1},
	}
	for _, tt := range tests {
		st := NewMemoryStorage()
		_ = st.Append(ents(1, 1, 2, 3))
		l, err := newLog(st, 0)
		if err != nil {
			t.Fatal(err)
		}
		l.commitTo(1)
		last, ok := l.maybeAppend(tt.index, tt.lt, tt.commit, ents(tt.index+1, tt.appendTs...))
		var got []uint64
		for i := uint64(1); i <= l.lastIndex(); i++ {
			got = append(got, l.termOrZero(i))
		}
		if ok != tt.wantOK || last != tt.wantLast || !slices.Equal(got, tt.wantTerms) || l.committed != tt.wantCommit {
			t.Errorf("%s: ok=%v last=%d terms=%v commit=%d, want %v %d %v %d",
				tt.name, ok, last, got, l.committed, tt.wantOK, tt.wantLast, tt.wantTerms, tt.wantCommit)
		}
	}
}

func TestLogConflictWithCommittedPanics(t *testing.T) {
	st := NewMemoryStorage()
	_ = st.Append(ents(1, 1, 1, 1))
	l, _ := newLog(st, 0)
	l.commitTo(3)
	defer func() {
		if recover() == nil {
			t.Fatal("overwriting a committed entry did not panic")
		}
	}()
	l.maybeAppend(1, 1, 3, ents(2, 2))
}

func TestLogCommittedEntriesOnlyPersisted(t *testing.T) {
	st := NewMemoryStorage()
	_ = st.Append(ents(1, 1, 1))
	l, _ := newLog(st, 0)
	l.append(ents(3, 1, 1)...)
	l.commitTo(4)
	if got := l.nextCommittedEnts(); len(got) != 2 || got[1].Index != 2 {
		t.Fatalf("committed entries %v, want only the persisted 1..2", got)
	}
	_ = st.Append(l.unstableEntries())
	l.stableTo(4, 1)
	if got := l.nextCommittedEnts(); len(got) != 4 {
		t.Fatalf("committed entries %v after persisting, want 1..4", got)
	}
}

func TestMemoryStorage(t *testing.T) {
	st := NewMemoryStorage()
	e := ents(1, 1, 1, 2, 2, 2)
	for i := range e {
		e[i].Data = []byte("0123456789")
	}
	if err := st.Append(e); err != nil {
		t.Fatal(err)
	}
	// Overwrite a suffix.
	if err := st.Append(ents(4, 3)); err != nil {
		t.Fatal(err)
	}
	if last, _ := st.LastIndex(); last != 4 {
		t.Fatalf("last %d after overwrite, want 4", last)
	}
	if got, _ := st.Entries(1, 5, 25); len(got) != 2 {
		t.Fatalf("entries under 25 bytes: %d, want 2", len(got))
	}
	if got, _ := st.Entries(1, 5, 1); len(got) != 1 {
		t.Fatalf("entries under 1 byte: %d, want at least one", len(got))
	}
	if _, err := st.Entries(1, 6, noLimit); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("entries past last: %v", err)
	}
	st.SetConfState(ConfState{Voters: []uint64{1, 2, 3}})
	if err := st.Compact(2); err != nil {
		t.Fatal(err)
	}
	if first, _ := st.FirstIndex(); first != 3 {
		t.Fatalf("first %d after compact, want 3", first)
	}
	if tm, err := st.Term(2); err != nil || tm != 1 {
		t.Fatalf("term of the compaction base: %d %v", tm, err)
	}
	if _, err := st.Term(1); !errors.Is(err, ErrCompacted) {
		t.Fatalf("term below base: %v", err)
	}
	if _, err := st.Entries(2, 4, noLimit); !errors.Is(err, ErrCompacted) {
		t.Fatalf("entries at base: %v", err)
	}
	if snap, _ := st.Snapshot(); snap.Index != 2 || !slices.Equal(snap.Conf.Voters, []uint64{1, 2, 3}) {
		t.Fatalf("snapshot after compact %+v", snap)
	}
	if err := st.Compact(2); !errors.Is(err, ErrCompacted) {
		t.Fatalf("compact again: %v", err)
	}
	if err := st.ApplySnapshot(SnapshotMeta{Index: 10, Term: 5, Conf: ConfState{Voters: []uint64{1}}}); err != nil {
		t.Fatal(err)
	}
	if first, _ := st.FirstIndex(); first != 11 {
		t.Fatalf("first %d after snapshot, want 11", first)
	}
	if last, _ := st.LastIndex(); last != 10 {
		t.Fatalf("last %d after snapshot, want 10", last)
	}
	if _, cs, _ := st.InitialState(); !slices.Equal(cs.Voters, []uint64{1}) {
		t.Fatalf("conf after snapshot %v", cs)
	}
	if err := st.ApplySnapshot(SnapshotMeta{Index: 9, Term: 5}); !errors.Is(err, ErrSnapOutOfDate) {
		t.Fatalf("older snapshot: %v", err)
	}
}

func TestLogTermSearch(t *testing.T) {
	st := NewMemoryStorage()
	_ = st.Append(ents(1, 1, 1, 2, 2, 2, 5, 5))
	l, _ := newLog(st, 0)
	first := []struct{ i, t, floor, want uint64 }{
		{5, 2, 1, 3}, {7, 5, 1, 6}, {4, 2, 4, 4}, {2, 1, 1, 1}, {5, 2, 5, 5},
	}
	for _, tt := range first {
		if got := l.firstIndexOfTerm(tt.i, tt.t, tt.floor); got != tt.want {
			t.Errorf("firstIndexOfTerm(%d, %d, %d) = %d, want %d", tt.i, tt.t, tt.floor, got, tt.want)
		}
	}
	last := []struct{ i, t, want uint64 }{
		{7, 2, 5}, {7, 3, 0}, {7, 5, 7}, {2, 2, 0}, {7, 1, 2}, {4, 2, 4}, {6, 9, 0},
	}
	for _, tt := range last {
		if got := l.lastIndexOfTerm(tt.i, tt.t); got != tt.want {
			t.Errorf("lastIndexOfTerm(%d, %d) = %d, want %d", tt.i, tt.t, got, tt.want)
		}
	}
}

// TestSliceFromStorageCountsOverhead: a slice that Storage cut short by its
// byte limit (Storage counts Data only) still weighs each entry's
// EntryOverheadBytes, so a MsgApp of many small stored entries stays
// within MaxSizePerMsg and the peer's frame limit (a learner catching up on
// 25k stored entries was cut off at every 4 MiB batch).
func TestSliceFromStorageCountsOverhead(t *testing.T) {
	st := NewMemoryStorage()
	var ents []Entry
	for i := uint64(1); i <= 1000; i++ {
		ents = append(ents, Entry{Index: i, Term: 1, Type: EntryNormal, Data: make([]byte, 10)})
	}
	if err := st.Append(ents); err != nil {
		t.Fatal(err)
	}
	l, err := newLog(st, 0)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 4200 // 100 entries by Data alone, 100 by Data+overhead at 42 bytes each
	got, err := l.slice(1, 1001, limit)
	if err != nil {
		t.Fatal(err)
	}
	if size := messageSize(got); size > limit {
		t.Fatalf("slice of %d entries weighs %d bytes with overhead, limit %d", len(got), size, limit)
	}
}
