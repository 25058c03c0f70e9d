package storage

import (
	"fmt"

	"github.com/raftmq/raftmq/raftlog"
	"go.etcd.io/bbolt"
)

// InitialState returns the persisted HardState and membership.
func (r *RaftDB) InitialState() (raftlog.HardState, raftlog.ConfState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hs, cloneConf(r.conf), nil
}

// FirstIndex returns the index of the first entry kept (base+1).
func (r *RaftDB) FirstIndex() (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.baseIndex + 1, nil
}

// LastIndex returns the index of the last entry (the base if the log is empty).
func (r *RaftDB) LastIndex() (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastIndex, nil
}

// Snapshot returns the meta of the newest snapshot recorded by
// CreateSnapshot, ApplySnapshot or Compact (empty if none).
func (r *RaftDB) Snapshot() (raftlog.SnapshotMeta, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return raftlog.SnapshotMeta{Index: r.snap.Index, Term: r.snap.Term, Conf: cloneConf(r.snap.Conf)}, nil
}

// Term returns the term of entry i, for i in [FirstIndex()-1, LastIndex()].
// Otherwise it wraps raftlog.ErrCompacted or raftlog.ErrUnavailable. A stored
// entry whose checksum fails gives ErrCorrupt.
func (r *RaftDB) Term(i uint64) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.termLocked(i)
}

func (r *RaftDB) termLocked(i uint64) (uint64, error) {
	switch {
	case i < r.baseIndex:
		return 0, fmt.Errorf("storage: term of %d: base is %d: %w", i, r.baseIndex, raftlog.ErrCompacted)
	case i > r.lastIndex:
		return 0, fmt.Errorf("storage: term of %d: last index is %d: %w", i, r.lastIndex, raftlog.ErrUnavailable)
	case i == r.baseIndex:
		return r.baseTerm, nil
	case i == r.lastIndex:
		return r.lastTerm, nil
	}
	var term uint64
	err := r.viewLocked(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketLog).Get(indexKey(i))
		if v == nil {
			return entryCorruptError(r.path, i, fmt.Errorf("missing (log holds %d..%d)", r.baseIndex+1, r.lastIndex))
		}
		var err error
		if term, err = entryTerm(i, v); err != nil {
			return entryCorruptError(r.path, i, err)
		}
		return nil
	})
	return term, err
}

// Entries returns the entries in [lo, hi): at least one if lo < hi, then as
// many as fit in maxBytes of Data. lo at or below the base wraps
// raftlog.ErrCompacted; hi beyond LastIndex()+1 wraps raftlog.ErrUnavailable.
// Every entry's checksum is verified; a mismatch gives ErrCorrupt naming the
// file and index. The returned slices belong to the caller.
func (r *RaftDB) Entries(lo, hi, maxBytes uint64) ([]raftlog.Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if lo <= r.baseIndex {
		return nil, fmt.Errorf("storage: entries from %d: base is %d: %w", lo, r.baseIndex, raftlog.ErrCompacted)
	}
	if hi > r.lastIndex+1 {
		return nil, fmt.Errorf("storage: entries up to %d: last index is %d: %w", hi, r.lastIndex, raftlog.ErrUnavailable)
	}
	if lo >= hi {
		return nil, nil
	}
	var out []raftlog.Entry
	err := r.viewLocked(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		var size uint64
		want := lo
		for k, v := c.Seek(indexKey(lo)); want < hi; k, v = c.Next() {
			if k == nil || len(k) != 8 || beU64(k) != want {
				return entryCorruptError(r.path, want, fmt.Errorf("missing (log holds %d..%d)", r.baseIndex+1, r.lastIndex))
			}
			e, err := decodeEntry(want, v)
			if err != nil {
				return entryCorruptError(r.path, want, err)
			}
			size += uint64(len(e.Data))
			if len(out) > 0 && size > maxBytes {
				return nil
			}
			out = append(out, e)
			want++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
