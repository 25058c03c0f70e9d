// Package snapshot stores raftmq snapshots: consistent copies of state.db
// with a checksummed header, written atomically (temp file, fsync, rename,
// fsync of the directory), kept N at a time, verified on every read,
// streamed in chunks to a follower and installed from chunks.
package snapshot

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/raftmq/raftmq/internal/fsutil"
)

const (
	snapSuffix = ".snap"
	tmpSuffix  = ".tmp"
	// MaxKept bounds Open's keep.
	MaxKept = 100
)

// Store is a directory of snapshot files "<term>-<index>.snap".
//
// A Store is safe for concurrent use. Create and Receiver.Finish delete all
// but the newest keep snapshots, so a reader of an older snapshot (a
// ReadChunk stream to a slow follower) may find it gone: it gets ErrNotFound
// and should restart from Latest.
type Store struct {
	dir         string
	clusterID   string
	keep        int
	removedTemp int

	mu   sync.Mutex // serializes rename+prune and guards recv
	recv *Receiver  // the one snapshot being received, if any

	// beforeRename, set by tests, runs after a temp file is complete and
	// fsynced, before it is renamed into place.
	beforeRename func(tmpPath string)
}

// Open opens (creating if needed) the snapshot directory dir for cluster
// clusterID, keeping the newest keep snapshots. Temp files left by a crash
// are removed; RemovedTempFiles says how many.
func Open(dir, clusterID string, keep int) (*Store, error) {
	if clusterID == "" || len(clusterID) > MaxClusterIDBytes {
		return nil, fmt.Errorf("snapshot: open %s: cluster id of %d bytes, want 1..%d", dir, len(clusterID), MaxClusterIDBytes)
	}
	if keep < 1 || keep > MaxKept {
		return nil, fmt.Errorf("snapshot: open %s: keep %d, want 1..%d", dir, keep, MaxKept)
	}
	// The directory's own entry must survive a power cut too.
	if err := fsutil.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: create directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot: read directory: %w", err)
	}
	s := &Store{dir: dir, clusterID: clusterID, keep: keep}
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), tmpSuffix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("snapshot: remove leftover temp file: %w", err)
			}
			s.removedTemp++
		}
	}
	if s.removedTemp > 0 {
		if err := fsutil.SyncDir(dir); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// RemovedTempFiles is the number of temp files (interrupted snapshot writes
// or receives) that Open deleted.
func (s *Store) RemovedTempFiles() int { return s.removedTemp }

// Path is the full path of the snapshot m.
func (s *Store) Path(m Meta) string { return filepath.Join(s.dir, m.Name()) }

// List returns the snapshots whose headers are intact and belong to this
// cluster, newest (highest index) first. Files that fail the header check
// are left out and reported in err (wrapping ErrBadHeader, ErrChecksum,
// ErrTruncated or ErrClusterMismatch, naming each file); the good ones are
// returned even when err != nil. Bodies are not read: see Verify.
func (s *Store) List() ([]Meta, error) {
	names, err := s.snapNames()
	if err != nil {
		return nil, err
	}
	var metas []Meta
	var errs []error
	for _, name := range names {
		m, err := s.readMeta(name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) { // pruned since ReadDir
				continue
			}
			errs = append(errs, err)
			continue
		}
		metas = append(metas, m)
	}
	slices.SortFunc(metas, func(a, b Meta) int {
		return cmp.Or(cmp.Compare(b.Index, a.Index), cmp.Compare(b.Term, a.Term))
	})
	return metas, errors.Join(errs...)
}

// Latest returns the newest intact snapshot, or ErrNotFound. Damaged files
// are skipped (List reports them).
func (s *Store) Latest() (Meta, error) {
	metas, err := s.List()
	if len(metas) == 0 {
		if err != nil {
			return Meta{}, fmt.Errorf("%w in %s: %w", ErrNotFound, s.dir, err)
		}
		return Meta{}, fmt.Errorf("%w in %s", ErrNotFound, s.dir)
	}
	return metas[0], nil
}

// Remove deletes the snapshot file name (e.g. after Verify failed).
func (s *Store) Remove(name string) error {
	if err := os.Remove(s.resolve(name)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrNotFound, s.resolve(name))
		}
		return fmt.Errorf("snapshot: remove: %w", err)
	}
	return fsutil.SyncDir(s.dir)
}

// readMeta reads the header of file name and checks it against the name
// and the cluster id.
func (s *Store) readMeta(name string) (Meta, error) {
	path := s.resolve(name)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Meta{}, fmt.Errorf("%w: %s: %w", ErrNotFound, path, err)
		}
		return Meta{}, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	m, _, err := readHeader(f)
	if err != nil {
		return Meta{}, fmt.Errorf("snapshot %s: %w; %s", path, err, adviceDelete)
	}
	return m, s.checkMeta(path, m)
}

// checkMeta checks a decoded header against the store and its file name.
func (s *Store) checkMeta(path string, m Meta) error {
	if m.ClusterID != s.clusterID {
		return fmt.Errorf("snapshot %s: %w: it belongs to cluster %q, this node is in cluster %q; "+
			"move it out of %s (wrong --data-dir or cluster file?)", path, ErrClusterMismatch, m.ClusterID, s.clusterID, s.dir)
	}
	if base := filepath.Base(path); base != m.Name() && strings.HasSuffix(base, snapSuffix) {
		return fmt.Errorf("snapshot %s: %w: header says term %d index %d (%s); %s",
			path, ErrBadHeader, m.Term, m.Index, m.Name(), adviceDelete)
	}
	return nil
}

// snapNames lists "*.snap" files whose names parse, in no particular order.
func (s *Store) snapNames() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot: read directory: %w", err)
	}
	var names []string
	for _, e := range ents {
		if _, _, ok := parseName(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// parseName parses "<term>-<index>.snap" (16 hex digits each).
func parseName(name string) (term, index uint64, ok bool) {
	base, found := strings.CutSuffix(name, snapSuffix)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	t, err1 := strconv.ParseUint(base[:16], 16, 64)
	i, err2 := strconv.ParseUint(base[17:], 16, 64)
	return t, i, err1 == nil && err2 == nil
}

// pruneLocked deletes all but the newest s.keep snapshot files, judged by
// name (term, index) so damaged files age out too. s.mu must be held.
func (s *Store) pruneLocked() error {
	names, err := s.snapNames()
	if err != nil {
		return err
	}
	if len(names) <= s.keep {
		return nil
	}
	slices.SortFunc(names, func(a, b string) int {
		ta, ia, _ := parseName(a)
		tb, ib, _ := parseName(b)
		return cmp.Or(cmp.Compare(ib, ia), cmp.Compare(tb, ta))
	})
	for _, name := range names[s.keep:] {
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("snapshot: delete old snapshot: %w", err)
		}
	}
	return fsutil.SyncDir(s.dir)
}

// resolve maps a snapshot name to a path; a name with a directory is used
// as given.
func (s *Store) resolve(name string) string {
	if strings.ContainsRune(name, os.PathSeparator) {
		return name
	}
	return filepath.Join(s.dir, name)
}
