package storage

import (
	"fmt"

	"github.com/raftmq/raftmq/raftlog"
	"go.etcd.io/bbolt"
)

// logFillPercent is how full bbolt fills a log page before splitting it.
const logFillPercent = 0.9

// Save persists hs (unless empty) and ents in one bbolt transaction, fsynced
// before it returns. ents must be contiguous and start at or below
// LastIndex()+1; an entry at or below LastIndex replaces the stored one and
// every later stored entry is deleted. Entries at or below the compaction
// base are already committed and are skipped. A step of a compaction
// scheduled with CompactLater rides in the same transaction. On error
// nothing was written.
func (r *RaftDB) Save(hs raftlog.HardState, ents []raftlog.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 1; i < len(ents); i++ {
		if ents[i].Index != ents[i-1].Index+1 {
			panic(fmt.Sprintf("storage: Save: entries not contiguous: index %d follows %d", ents[i].Index, ents[i-1].Index))
		}
	}
	if len(ents) > 0 && ents[0].Index > r.lastIndex+1 {
		panic(fmt.Sprintf("storage: Save: gap: first new entry %d, last stored %d", ents[0].Index, r.lastIndex))
	}
	for len(ents) > 0 && ents[0].Index <= r.baseIndex {
		ents = ents[1:]
	}
	if hs.IsEmpty() && len(ents) == 0 {
		return nil
	}
	save := func(tx *bbolt.Tx) error {
		if !hs.IsEmpty() {
			if err := putSealed(tx.Bucket(bucketMeta), keyHardState, encodeHardState(hs)); err != nil {
				return err
			}
		}
		if len(ents) == 0 {
			return nil
		}
		logB := tx.Bucket(bucketLog)
		// Keys are appended in order: fuller pages make a smaller file
		// (etcd does the same for its sequential buckets).
		logB.FillPercent = logFillPercent
		newLast := ents[len(ents)-1].Index
		for i := newLast + 1; i <= r.lastIndex; i++ {
			if err := logB.Delete(indexKey(i)); err != nil {
				return err
			}
		}
		for _, e := range ents {
			if err := logB.Put(indexKey(e.Index), encodeEntry(e)); err != nil {
				return fmt.Errorf("entry %d: %w", e.Index, err)
			}
		}
		return nil
	}
	var step compactStep
	err := r.updateLocked("save", func(tx *bbolt.Tx) error {
		if err := save(tx); err != nil {
			return err
		}
		// A step of a scheduled compaction rides along (CompactLater).
		last := r.lastIndex
		if len(ents) > 0 {
			last = ents[len(ents)-1].Index
		}
		var err error
		step, err = r.compactStepTx(tx, last, len(ents))
		return err
	})
	if err != nil {
		return err
	}
	if step.to > 0 {
		r.applyCompactStep(step)
		r.stepped = true
	}
	if !hs.IsEmpty() {
		r.hs = hs
	}
	if len(ents) > 0 {
		last := ents[len(ents)-1]
		r.lastIndex, r.lastTerm = last.Index, last.Term
	}
	return nil
}

// SetConfState persists the membership.
func (r *RaftDB) SetConfState(cs raftlog.ConfState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.updateLocked("set membership", func(tx *bbolt.Tx) error {
		return putSealed(tx.Bucket(bucketMeta), keyConf, appendConfState(nil, cs))
	})
	if err != nil {
		return err
	}
	r.conf = cloneConf(cs)
	return nil
}

// ApplySnapshot resets the log to an installed snapshot: every entry is
// deleted, the log's base becomes (meta.Index, meta.Term), Snapshot()
// returns meta and, if meta.Conf has voters, it becomes the membership.
// HardState is unchanged. A snapshot not newer than the current snapshot or
// base wraps raftlog.ErrSnapOutOfDate. (Same semantics as
// raftlog.MemoryStorage.)
func (r *RaftDB) ApplySnapshot(meta raftlog.SnapshotMeta) error {
	return r.applySnapshot(meta, nil)
}

// ApplySnapshotWithMembers is ApplySnapshot that also records m (the
// members record the snapshot carries, merged by the caller) in the same
// durable write, so the log's base and the members record never disagree.
func (r *RaftDB) ApplySnapshotWithMembers(meta raftlog.SnapshotMeta, m Members) error {
	return r.applySnapshot(meta, &m)
}

func (r *RaftDB) applySnapshot(meta raftlog.SnapshotMeta, members *Members) error {
	var mb []byte
	if members != nil {
		var err error
		if mb, err = EncodeMembers(*members); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if have := max(r.baseIndex, r.snap.Index); meta.Index <= have {
		return fmt.Errorf("storage: apply snapshot at %d to %s, have %d: %w", meta.Index, r.path, have, raftlog.ErrSnapOutOfDate)
	}
	conf := r.conf
	if !meta.Conf.IsEmpty() {
		conf = meta.Conf
	}
	err := r.updateLocked("apply snapshot", func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketLog); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketLog); err != nil {
			return err
		}
		m := tx.Bucket(bucketMeta)
		if err := putSealed(m, keyBase, putU64(putU64(nil, meta.Index), meta.Term)); err != nil {
			return err
		}
		if err := putSealed(m, keyConf, appendConfState(nil, conf)); err != nil {
			return err
		}
		if mb != nil {
			if err := putSealed(m, keyMembers, mb); err != nil {
				return err
			}
		}
		return putSealed(m, keySnapshot, encodeSnapshotMeta(meta))
	})
	if err != nil {
		return err
	}
	if members != nil {
		r.members = members.clone()
	}
	r.baseIndex, r.baseTerm = meta.Index, meta.Term
	r.lastIndex, r.lastTerm = meta.Index, meta.Term
	r.conf = cloneConf(conf)
	r.snap = raftlog.SnapshotMeta{Index: meta.Index, Term: meta.Term, Conf: cloneConf(meta.Conf)}
	return nil
}

// CreateSnapshot records that a durable snapshot of the state machine at
// index i exists (its bytes live in package snapshot), without dropping
// entries; Snapshot() returns it from now on, so a leader can send it to a
// follower that needs compacted entries. i not newer than the recorded
// snapshot wraps raftlog.ErrSnapOutOfDate; beyond LastIndex
// raftlog.ErrUnavailable. (Same semantics as raftlog.MemoryStorage.)
func (r *RaftDB) CreateSnapshot(i uint64, conf raftlog.ConfState) (raftlog.SnapshotMeta, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i <= r.snap.Index {
		return raftlog.SnapshotMeta{}, fmt.Errorf("storage: create snapshot at %d in %s, have %d: %w", i, r.path, r.snap.Index, raftlog.ErrSnapOutOfDate)
	}
	if i > r.lastIndex {
		return raftlog.SnapshotMeta{}, fmt.Errorf("storage: create snapshot at %d in %s, last index %d: %w", i, r.path, r.lastIndex, raftlog.ErrUnavailable)
	}
	term, err := r.termLocked(i)
	if err != nil {
		return raftlog.SnapshotMeta{}, err
	}
	meta := raftlog.SnapshotMeta{Index: i, Term: term, Conf: cloneConf(conf)}
	if err := r.putSnapshotLocked(meta); err != nil {
		return raftlog.SnapshotMeta{}, err
	}
	return meta, nil
}

func (r *RaftDB) putSnapshotLocked(meta raftlog.SnapshotMeta) error {
	err := r.updateLocked("record snapshot", func(tx *bbolt.Tx) error {
		return putSealed(tx.Bucket(bucketMeta), keySnapshot, encodeSnapshotMeta(meta))
	})
	if err != nil {
		return err
	}
	r.snap = raftlog.SnapshotMeta{Index: meta.Index, Term: meta.Term, Conf: cloneConf(meta.Conf)}
	return nil
}

// Compact deletes the entries up to and including index; index and its term
// become the log's base (FirstIndex() = index+1, Term(index) still answers).
// If no recorded snapshot covers index, one is recorded at index with the
// current membership (in the same transaction), so Snapshot() can always
// serve a follower that needs the dropped entries. Compacting at or below
// the base wraps raftlog.ErrCompacted; beyond the last index
// raftlog.ErrUnavailable. The caller must not compact past what state.db
// (or a snapshot) has made durable.
//
// The entries go in transactions of at most compactBatchEntries, each
// moving the base forward: one transaction for a long log would hold a node
// in memory for every page it touches (tens of MiB for a log as large as a
// deep queue, decision 15). A crash between two leaves a shorter compaction,
// which is as valid: the snapshot (recorded in the first) covers it.
func (r *RaftDB) Compact(index uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkCompactLocked(index); err != nil {
		return err
	}
	term, err := r.termLocked(index)
	if err != nil {
		return err
	}
	snap := r.snap
	if snap.Index < index {
		snap = raftlog.SnapshotMeta{Index: index, Term: term, Conf: cloneConf(r.conf)}
	}
	for r.baseIndex < index {
		to := min(index, r.baseIndex+compactBatchEntries)
		toTerm := term
		if to != index {
			if toTerm, err = r.termLocked(to); err != nil {
				return err
			}
		}
		err = r.updateLocked("compact", func(tx *bbolt.Tx) error {
			logB := tx.Bucket(bucketLog)
			for i := r.baseIndex + 1; i <= to; i++ {
				if err := logB.Delete(indexKey(i)); err != nil {
					return err
				}
			}
			m := tx.Bucket(bucketMeta)
			if snap.Index != r.snap.Index {
				if err := putSealed(m, keySnapshot, encodeSnapshotMeta(snap)); err != nil {
					return err
				}
			}
			return putSealed(m, keyBase, putU64(putU64(nil, to), toTerm))
		})
		if err != nil {
			return err
		}
		r.baseIndex, r.baseTerm = to, toTerm
		r.snap = snap
	}
	return nil
}

// checkCompactLocked refuses a compaction to index at or below the base
// (ErrCompacted) or beyond the last entry (ErrUnavailable).
func (r *RaftDB) checkCompactLocked(index uint64) error {
	if index <= r.baseIndex {
		return fmt.Errorf("storage: compact %s to %d: base is already %d: %w", r.path, index, r.baseIndex, raftlog.ErrCompacted)
	}
	if index > r.lastIndex {
		return fmt.Errorf("storage: compact %s to %d: beyond the last index %d: %w", r.path, index, r.lastIndex, raftlog.ErrUnavailable)
	}
	return nil
}

// compactBatchEntries bounds the entries one compaction transaction deletes.
const compactBatchEntries = 16384
