package storage

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// CopyCompact writes a compact copy of state.db (only live pages, full
// pages, no freelist) to a new file at dstPath, from one read transaction,
// and returns the applied index that copy holds. It runs concurrently with
// Apply. Cancelling ctx stops it (and ends its read transaction) within a
// few milliseconds; dstPath is then removed. The copy is a valid state.db:
// it is what a snapshot carries and what Replace swaps in.
func (s *StateDB) CopyCompact(ctx context.Context, dstPath string) (uint64, error) {
	if err := removeStale(dstPath); err != nil {
		return 0, err
	}
	var applied uint64
	err := s.viewDurable(func(tx *bbolt.Tx) error {
		var err error
		if applied, err = getCounter(tx, s.path, keyApplied); err != nil {
			return err
		}
		return copyInto(ctx, tx, dstPath)
	})
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("storage: compact copy of %s: %w", s.path, err)
	}
	return applied, err
}

// Stats reports the file's size and free space.
func (s *StateDB) Stats() (FileStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fileStats(s.db, s.path)
}

// Replace closes state.db, renames the complete, fsynced state.db file at
// from over it (durably: rename, fsync of the directory) and reopens it.
// AppliedIndex then reports what the new file holds. Entries applied but not
// yet committed are dropped with the old file. No read may be in progress
// (it would hold the old file open). If the new file cannot be opened the
// StateDB is unusable and the error says so: the caller must stop.
func (s *StateDB) Replace(from string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	s.rollbackLocked()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("storage: close %s: %w", s.path, err)
	}
	if err := swapFile(from, s.path); err != nil {
		if rerr := s.openLocked(); rerr != nil {
			return fmt.Errorf("%w; and reopening the old file failed: %w", err, rerr)
		}
		return err
	}
	if err := s.openLocked(); err != nil {
		return fmt.Errorf("storage: reopen %s after swapping in a new file: %w", s.path, err)
	}
	return nil
}
