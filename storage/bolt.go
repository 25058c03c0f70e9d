package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/raftmq/raftmq/internal/fsutil"
)

// openTimeout bounds how long an open waits for the file lock, so a second
// broker on the same directory fails fast instead of hanging.
const openTimeout = time.Second

// fileMode is the permission of newly created database files.
const fileMode = 0o600

// corruptError wraps ErrCorrupt with the file, what is wrong and the advice.
func corruptError(path, what string) error {
	return fmt.Errorf("%w: %s: %s; %s", ErrCorrupt, path, what, corruptAdvice)
}

// openBolt opens path with the lock timeout. It turns every way bbolt can
// reject or crash on a damaged file into ErrCorrupt (including a fault on a
// page beyond the end of a truncated file), and a held lock into ErrLocked.
// A read-only open preloads the freelist so tx.Check can run.
func openBolt(path string, readOnly bool) (db *bbolt.DB, err error) {
	opts := &bbolt.Options{
		Timeout:         openTimeout,
		ReadOnly:        readOnly,
		PreLoadFreelist: readOnly,
		FreelistType:    bbolt.FreelistMapType,
	}
	if readOnly {
		if _, statErr := os.Stat(path); statErr != nil {
			return nil, fmt.Errorf("storage: open %s: %w", path, statErr)
		}
	}
	_, statErr := os.Stat(path)
	created := !readOnly && errors.Is(statErr, os.ErrNotExist)
	err = guard(path, func() error {
		var openErr error
		db, openErr = bbolt.Open(path, fileMode, opts)
		return openErr
	})
	if err == nil && created {
		// bbolt fsyncs the new file's content, not its name: without this a
		// power cut can leave the directory without the file.
		if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("storage: create %s: %w", path, err)
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s: another process holds its lock (is a broker running on this directory?)", ErrLocked, path)
	case errors.Is(err, ErrCorrupt):
		return nil, err
	case isOSError(err):
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	default:
		// ErrInvalid, ErrChecksum, ErrVersionMismatch and whatever else
		// bbolt says about the bytes it read.
		return nil, corruptError(path, fmt.Sprintf("not a readable bbolt database (%v)", err))
	}
	if err := checkSize(db, path); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

func isOSError(err error) bool {
	var pathErr *fs.PathError
	return errors.As(err, &pathErr)
}

// checkSize rejects a file shorter than the pages its meta page refers to:
// reading such a page would fault.
func checkSize(db *bbolt.DB, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("storage: stat %s: %w", path, err)
	}
	return guard(path, func() error {
		return db.View(func(tx *bbolt.Tx) error {
			if need := tx.Size(); info.Size() < need {
				return corruptError(path, fmt.Sprintf("truncated: the file holds %d bytes, its pages need %d", info.Size(), need))
			}
			return nil
		})
	})
}

// guard runs fn and turns a panic or a memory fault inside bbolt (which
// happens when it walks damaged pages) into ErrCorrupt naming path. bbolt's
// managed transactions roll back on a panic before it reaches guard.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corruptError(path, fmt.Sprintf("bbolt failed reading it: %v", r))
		}
	}()
	return fn()
}
