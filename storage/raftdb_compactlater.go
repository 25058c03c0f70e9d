package storage

import (
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// compactPerStep is how many log entries one step of a compaction
// scheduled with CompactLater deletes beyond those the Save it rides in
// appends: small, so that the Save stays cheap, and more than it appends,
// so that the log cannot outgrow its compaction however large the batches.
const compactPerStep = 256

// errNotCovered: CompactLater needs a recorded snapshot at or past its index.
var errNotCovered = errors.New("no recorded snapshot covers it")

// CompactLater schedules what Compact does without a transaction of its
// own: every later Save deletes up to compactPerStep more entries than it
// appends, in its own transaction, and moves the base with them, and CompactStep takes a
// step when no Save did. A compaction of thousands of entries in one piece
// stopped the raft loop for tens of milliseconds; in steps it costs no
// commit of its own. Until deleted the entries stay readable (FirstIndex
// moves as they go). A crash between steps leaves a shorter compaction,
// valid because the recorded snapshot covers it, which is therefore
// required: index must be at or below the snapshot's. The errors are
// Compact's.
func (r *RaftDB) CompactLater(index uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkCompactLocked(index); err != nil {
		return err
	}
	if index > r.snap.Index {
		return fmt.Errorf("storage: compact %s to %d in steps: the recorded snapshot covers only %d: %w", r.path, index, r.snap.Index, errNotCovered)
	}
	r.compactTo = max(r.compactTo, index)
	return nil
}

// CompactStep takes one step of a scheduled compaction in a transaction of
// its own, unless a Save took one since the last call: the raft loop calls
// it on its ticker, so a log no one writes to still finishes compacting.
func (r *RaftDB) CompactStep() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.compactTo <= r.baseIndex {
		return nil
	}
	if r.stepped {
		r.stepped = false
		return nil
	}
	var step compactStep
	err := r.updateLocked("compact", func(tx *bbolt.Tx) error {
		var err error
		step, err = r.compactStepTx(tx, r.lastIndex, 0)
		return err
	})
	if err != nil {
		return err
	}
	r.applyCompactStep(step)
	return nil
}

// compactStep is a step written in a transaction, applied to the caches
// once that transaction committed.
type compactStep struct {
	to, toTerm uint64
}

// compactStepTx deletes the next entries of the scheduled compaction in tx,
// whose log ends at last and which appends appended entries, and moves the
// base record after them. Call with mu held.
func (r *RaftDB) compactStepTx(tx *bbolt.Tx, last uint64, appended int) (compactStep, error) {
	target := min(r.compactTo, last)
	if target <= r.baseIndex {
		return compactStep{}, nil
	}
	to := min(target, r.baseIndex+compactPerStep+uint64(appended))
	logB := tx.Bucket(bucketLog)
	v := logB.Get(indexKey(to))
	if v == nil {
		return compactStep{}, entryCorruptError(r.path, to, fmt.Errorf("missing (log holds %d..%d)", r.baseIndex+1, r.lastIndex))
	}
	toTerm, err := entryTerm(to, v)
	if err != nil {
		return compactStep{}, entryCorruptError(r.path, to, err)
	}
	for i := r.baseIndex + 1; i <= to; i++ {
		if err := logB.Delete(indexKey(i)); err != nil {
			return compactStep{}, err
		}
	}
	if err := putSealed(tx.Bucket(bucketMeta), keyBase, putU64(putU64(nil, to), toTerm)); err != nil {
		return compactStep{}, err
	}
	return compactStep{to: to, toTerm: toTerm}, nil
}

func (r *RaftDB) applyCompactStep(s compactStep) {
	if s.to > r.baseIndex {
		r.baseIndex, r.baseTerm = s.to, s.toTerm
	}
}
