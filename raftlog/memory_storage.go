package raftlog

import (
	"fmt"
	"sync"
)

// MemoryStorage is an in-memory Storage for tests and simulations. The
// caller writes to it what each Ready asks to persist (SetHardState, Append,
// ApplySnapshot) before calling Advance. It is safe for concurrent use.
type MemoryStorage struct {
	mu        sync.Mutex
	hardState HardState
	conf      ConfState
	snap      SnapshotMeta
	// ents[0] is a placeholder holding the snapshot's index and term;
	// ents[i] has index snap.Index+i.
	ents []Entry
}

var _ Storage = (*MemoryStorage)(nil)

// NewMemoryStorage returns an empty storage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{ents: make([]Entry, 1)}
}

// InitialState implements Storage.
func (ms *MemoryStorage) InitialState() (HardState, ConfState, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.hardState, ms.conf.Clone(), nil
}

// SetHardState records the persisted HardState.
func (ms *MemoryStorage) SetHardState(hs HardState) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.hardState = hs
	return nil
}

// SetConfState records the membership.
func (ms *MemoryStorage) SetConfState(cs ConfState) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.conf = cs.Clone()
}

func (ms *MemoryStorage) offset() uint64 { return ms.ents[0].Index }
func (ms *MemoryStorage) lastIndexLocked() uint64 {
	return ms.ents[0].Index + uint64(len(ms.ents)) - 1
}

// Entries implements Storage.
func (ms *MemoryStorage) Entries(lo, hi, maxBytes uint64) ([]Entry, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if lo <= ms.offset() {
		return nil, fmt.Errorf("entries from %d, snapshot at %d: %w", lo, ms.offset(), ErrCompacted)
	}
	if hi > ms.lastIndexLocked()+1 {
		return nil, fmt.Errorf("entries to %d, last %d: %w", hi, ms.lastIndexLocked(), ErrUnavailable)
	}
	if lo >= hi {
		return nil, nil
	}
	ents := ms.ents[lo-ms.offset() : hi-ms.offset()]
	return append([]Entry(nil), limitSize(ents, maxBytes, 0)...), nil
}

// Term implements Storage.
func (ms *MemoryStorage) Term(i uint64) (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if i < ms.offset() {
		return 0, fmt.Errorf("term %d, snapshot at %d: %w", i, ms.offset(), ErrCompacted)
	}
	if i > ms.lastIndexLocked() {
		return 0, fmt.Errorf("term %d, last %d: %w", i, ms.lastIndexLocked(), ErrUnavailable)
	}
	return ms.ents[i-ms.offset()].Term, nil
}

// FirstIndex implements Storage.
func (ms *MemoryStorage) FirstIndex() (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.offset() + 1, nil
}

// LastIndex implements Storage.
func (ms *MemoryStorage) LastIndex() (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.lastIndexLocked(), nil
}

// Snapshot implements Storage.
func (ms *MemoryStorage) Snapshot() (SnapshotMeta, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.snap, nil
}

// Append persists ents. Entries already compacted are skipped; an entry at
// or below the last index replaces it and everything after it. A gap after
// the last index is a caller bug and panics.
func (ms *MemoryStorage) Append(ents []Entry) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if len(ents) == 0 {
		return nil
	}
	first := ms.offset() + 1
	if last := ents[len(ents)-1].Index; last < first {
		return nil
	}
	if ents[0].Index < first {
		ents = ents[first-ents[0].Index:]
	}
	at := ents[0].Index - ms.offset()
	if at > uint64(len(ms.ents)) {
		panic(fmt.Sprintf("raftlog: MemoryStorage append at %d leaves a gap after last index %d",
			ents[0].Index, ms.lastIndexLocked()))
	}
	// Overwriting in place is safe: Entries hands out copies.
	ms.ents = append(ms.ents[:at], ents...)
	return nil
}

// ApplySnapshot resets the log to the snapshot s: all entries go, s
// becomes the base, and its membership becomes the ConfState.
func (ms *MemoryStorage) ApplySnapshot(s SnapshotMeta) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if s.Index <= ms.snap.Index {
		return fmt.Errorf("apply snapshot at %d, have %d: %w", s.Index, ms.snap.Index, ErrSnapOutOfDate)
	}
	ms.snap = s
	ms.ents = []Entry{{Index: s.Index, Term: s.Term}}
	if !s.Conf.IsEmpty() {
		ms.conf = s.Conf.Clone()
	}
	return nil
}

// CreateSnapshot records that a snapshot of the state machine at index i
// exists (its bytes live elsewhere), without dropping entries.
func (ms *MemoryStorage) CreateSnapshot(i uint64, conf ConfState) (SnapshotMeta, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if i <= ms.snap.Index {
		return SnapshotMeta{}, fmt.Errorf("create snapshot at %d, have %d: %w", i, ms.snap.Index, ErrSnapOutOfDate)
	}
	if i > ms.lastIndexLocked() {
		return SnapshotMeta{}, fmt.Errorf("create snapshot at %d, last %d: %w", i, ms.lastIndexLocked(), ErrUnavailable)
	}
	ms.snap = SnapshotMeta{Index: i, Term: ms.ents[i-ms.offset()].Term, Conf: conf.Clone()}
	return ms.snap, nil
}

// Compact drops entries at or below index, keeping its term as the base.
// If no snapshot covers index yet, one is recorded with the current
// membership, so that Snapshot() can always serve a follower that needs
// the dropped entries.
func (ms *MemoryStorage) Compact(index uint64) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if index <= ms.offset() {
		return fmt.Errorf("compact to %d, snapshot at %d: %w", index, ms.offset(), ErrCompacted)
	}
	if index > ms.lastIndexLocked() {
		return fmt.Errorf("compact to %d, last %d: %w", index, ms.lastIndexLocked(), ErrUnavailable)
	}
	i := index - ms.offset()
	if ms.snap.Index < index {
		ms.snap = SnapshotMeta{Index: index, Term: ms.ents[i].Term, Conf: ms.conf.Clone()}
	}
	ents := make([]Entry, 1, uint64(len(ms.ents))-i)
	ents[0] = Entry{Index: ms.ents[i].Index, Term: ms.ents[i].Term}
	ms.ents = append(ents, ms.ents[i+1:]...)
	return nil
}
