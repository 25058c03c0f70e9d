package raftlog

// Storage is the core's read-only view of the persisted log, implemented by
// storage.RaftDB (bbolt) and MemoryStorage (tests). The core never writes
// through it: the caller persists Ready.Entries/HardState and only then calls
// Advance, after which Storage must return them.
//
// Entries that are not yet persisted live in the core (its unstable log).
// Implementations must be safe to call from the goroutine that owns the core
// while the same goroutine writes to them between Ready and Advance.
type Storage interface {
	// InitialState returns the persisted HardState and membership.
	InitialState() (HardState, ConfState, error)
	// Entries returns entries in [lo, hi), at least one if lo < hi, and
	// stops before the total Data size would exceed maxBytes.
	// It returns ErrCompacted if lo <= the snapshot index, ErrUnavailable if
	// hi > LastIndex()+1.
	Entries(lo, hi, maxBytes uint64) ([]Entry, error)
	// Term returns the term of entry i, which must be in
	// [FirstIndex()-1, LastIndex()]; the term of FirstIndex()-1 is the
	// snapshot's term. Otherwise ErrCompacted or ErrUnavailable.
	Term(i uint64) (uint64, error)
	// FirstIndex is the index of the first entry available (snapshot index+1).
	FirstIndex() (uint64, error)
	// LastIndex is the index of the last persisted entry (the snapshot index
	// when the log is empty).
	LastIndex() (uint64, error)
	// Snapshot returns the metadata of the newest snapshot (empty if none).
	Snapshot() (SnapshotMeta, error)
}
