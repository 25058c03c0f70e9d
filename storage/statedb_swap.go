package storage

import (
	"context"
	"errors"
	"fmt"
	"io"

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

// QueuedBytes returns the bytes of every message queued (applied, durable
// or not): the size of the state a snapshot carries, less its keys and
// pages.
func (s *StateDB) QueuedBytes() (uint64, error) {
	depths, err := s.TopicDepths()
	var sum uint64
	for _, d := range depths {
		sum += d.Bytes
	}
	return sum, err
}

// ViewSnapshot runs fn in one read transaction on what state.db has
// committed, beside Apply. fn gets the applied index that transaction sees
// and write, which copies the whole file as that transaction sees it
// (bbolt's Tx.WriteTo: page by page from the file, nothing held in memory)
// to w. It is how a snapshot is streamed straight into its file.
func (s *StateDB) ViewSnapshot(fn func(applied uint64, write func(w io.Writer) (int64, error)) error) error {
	err := s.viewDurable(func(tx *bbolt.Tx) error {
		applied, err := getCounter(tx, s.path, keyApplied)
		if err != nil {
			return err
		}
		return fn(applied, tx.WriteTo)
	})
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("storage: snapshot of %s: %w", s.path, err)
	}
	return err
}
