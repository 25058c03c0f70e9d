// Package fsutil holds the one way raftmq makes names durable. A file's
// fsync makes its data durable, not its name: creating, renaming or
// removing a file is durable only once its directory is fsynced (POSIX
// promises no more, and a power cut on a disk that honours only that loses
// the name). Every place that creates, renames or removes a file that
// matters calls SyncDir, or MkdirAll for directories.
package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrSync wraps every failure of this package.
var ErrSync = errors.New("fsutil: cannot make a directory entry durable")

// SyncDir fsyncs directory dir, making the entries it holds now durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: open %s: %w", ErrSync, dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%w: fsync %s: %w", ErrSync, dir, err)
	}
	return nil
}

// MkdirAll is os.MkdirAll that also fsyncs the parent of every directory
// it creates, so the new directories survive a power cut. An existing
// directory is left alone.
func MkdirAll(dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%w: %s is not a directory", ErrSync, dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: create %s: %w", ErrSync, dir, err)
	}
	return SyncDir(parent)
}
