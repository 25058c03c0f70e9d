package snapshot

import (
	"errors"
	"os"
	"slices"
)

// Damaged is a snapshot file that failed verification.
type Damaged struct {
	Name string // file name in the store
	Path string
	Err  error // wraps ErrChecksum, ErrTruncated, ErrBadHeader or ErrClusterMismatch
}

// CheckAll verifies every snapshot file in the store (header, cluster id
// and body checksum: it reads each file whole) and returns the damaged
// ones, sorted by name. The error is set only when the directory cannot be
// read.
func (s *Store) CheckAll() ([]Damaged, error) {
	names, err := s.snapNames()
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var bad []Damaged
	for _, name := range names {
		err := s.Verify(name)
		if err == nil || errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrNotFound) {
			continue
		}
		bad = append(bad, Damaged{Name: name, Path: s.resolve(name), Err: err})
	}
	return bad, nil
}
