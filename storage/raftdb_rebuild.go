package storage

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// rebuildSuffix names the temp file Rebuild writes next to raft.db.
const rebuildSuffix = ".rebuild"

// Stats reports the file's size and free space.
func (r *RaftDB) Stats() (FileStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fileStats(r.db, r.path)
}

// Rebuild rewrites raft.db into a fresh, compact file (the meta records and
// the entries still in the log) and swaps it in atomically: write a temp
// file, fsync, rename over raft.db, fsync the directory, reopen. bbolt never
// shrinks a file, so this is how the disk a compacted log freed comes back.
// It costs one copy of the live log; call it after Compact, when Stats says
// the file is mostly free pages. A crash at any point leaves the old or the
// new file, both complete; a leftover temp file is removed by OpenRaftDB.
func (r *RaftDB) Rebuild() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	tmp := r.path + rebuildSuffix
	if err := removeStale(tmp); err != nil {
		return err
	}
	err := r.viewLocked(func(tx *bbolt.Tx) error { return copyInto(context.Background(), tx, tmp) })
	if err != nil {
		return fmt.Errorf("storage: rebuild %s: %w", r.path, err)
	}
	if err := r.db.Close(); err != nil {
		return fmt.Errorf("storage: rebuild %s: close: %w", r.path, err)
	}
	swapErr := swapFile(tmp, r.path)
	db, err := openBolt(r.path, false)
	if err != nil {
		return fmt.Errorf("storage: reopen %s after rebuild: %w", r.path, err)
	}
	r.db = db
	if swapErr != nil {
		_ = removeStale(tmp)
		return swapErr
	}
	return nil
}
