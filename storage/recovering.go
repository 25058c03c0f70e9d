package storage

import "go.etcd.io/bbolt"

// Recovering reports whether raft.db is marked as belonging to a node that
// lost or damaged its data and has not yet caught up with its cluster (see
// SetRecovering).
func (r *RaftDB) Recovering() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recover
}

// SetRecovering marks (on) or unmarks raft.db as recovering, durably. The
// broker marks a node started with --recover or on damaged files, and
// unmarks it when the consensus core reports it caught up; a node that
// restarts before then recovers again rather than voting with a log that
// may lack entries it once acknowledged.
func (r *RaftDB) SetRecovering(on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recover == on {
		return nil
	}
	err := r.updateLocked("set recovering", func(tx *bbolt.Tx) error {
		if on {
			return putSealed(tx.Bucket(bucketMeta), keyRecover, []byte{1})
		}
		return tx.Bucket(bucketMeta).Delete([]byte(keyRecover))
	})
	if err != nil {
		return err
	}
	r.recover = on
	return nil
}
