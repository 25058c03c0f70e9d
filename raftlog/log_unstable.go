package raftlog

import "fmt"

// unstable holds what the core knows but the caller has not yet persisted:
// log entries newer than Storage's, and at most one incoming snapshot.
// Both leave through Ready and become stable on Advance.
//
// Invariant: entries[i].Index == offset+i. When snapshot is set,
// offset == snapshot.Index+1.
type unstable struct {
	snapshot *SnapshotMeta
	entries  []Entry
	offset   uint64
}

// maybeFirstIndex is the first index implied by a pending snapshot.
func (u *unstable) maybeFirstIndex() (uint64, bool) {
	if u.snapshot != nil {
		return u.snapshot.Index + 1, true
	}
	return 0, false
}

// maybeLastIndex is the last index held here, if any.
func (u *unstable) maybeLastIndex() (uint64, bool) {
	if n := len(u.entries); n > 0 {
		return u.offset + uint64(n) - 1, true
	}
	if u.snapshot != nil {
		return u.snapshot.Index, true
	}
	return 0, false
}

// maybeTerm is the term of entry i, if held here.
func (u *unstable) maybeTerm(i uint64) (uint64, bool) {
	if i < u.offset {
		if u.snapshot != nil && u.snapshot.Index == i {
			return u.snapshot.Term, true
		}
		return 0, false
	}
	last, ok := u.maybeLastIndex()
	if !ok || i > last {
		return 0, false
	}
	return u.entries[i-u.offset].Term, true
}

// stableTo drops entries up to i once the caller persisted them. A term
// mismatch means the entry was overwritten after the Ready went out; the
// newer entry is still unstable and stays.
func (u *unstable) stableTo(i, term uint64) {
	t, ok := u.maybeTerm(i)
	if !ok || t != term || i < u.offset {
		return
	}
	u.entries = u.entries[i+1-u.offset:]
	u.offset = i + 1
	if len(u.entries) == 0 {
		u.entries = nil // let the backing array go
	}
}

// stableSnapTo forgets the pending snapshot once the caller installed it.
func (u *unstable) stableSnapTo(i uint64) {
	if u.snapshot != nil && u.snapshot.Index == i {
		u.snapshot = nil
	}
}

// restore replaces everything with the snapshot s.
func (u *unstable) restore(s SnapshotMeta) {
	u.offset = s.Index + 1
	u.entries = nil
	u.snapshot = &s
}

// truncateAndAppend appends ents, first dropping any held entries at or
// after ents[0].Index. It never writes into a slice already handed out in a
// Ready: a truncation copies.
func (u *unstable) truncateAndAppend(ents []Entry) {
	if len(ents) == 0 {
		return
	}
	after := ents[0].Index
	switch {
	case after == u.offset+uint64(len(u.entries)):
		u.entries = append(u.entries, ents...)
	case after <= u.offset:
		// Replaces everything held here (and, for the caller, the persisted
		// suffix from after on).
		u.offset = after
		u.entries = append([]Entry(nil), ents...)
	default:
		kept := append([]Entry(nil), u.slice(u.offset, after)...)
		u.entries = append(kept, ents...)
	}
}

// slice returns entries [lo, hi) held here.
func (u *unstable) slice(lo, hi uint64) []Entry {
	if lo > hi || lo < u.offset || hi > u.offset+uint64(len(u.entries)) {
		panic(fmt.Sprintf("raftlog: unstable.slice[%d,%d) out of bounds [%d,%d)",
			lo, hi, u.offset, u.offset+uint64(len(u.entries))))
	}
	return u.entries[lo-u.offset : hi-u.offset]
}
