package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/bbolt"

	"github.com/raftmq/raftmq/internal/fsutil"
)

// copyTxBytes bounds one write transaction of a compact copy: bbolt holds a
// transaction's dirty pages in memory until it commits. At 8 MiB a node's
// anonymous memory rose from about 20 MB to 56-76 MB while a drained queue's
// state.db was copied; at 2 MiB to 27-42 MB, in about the same time (the
// copy does not fsync between its transactions).
const copyTxBytes = 2 << 20

// ctxCheckKeys is how many keys a copy writes between cancellation checks.
const ctxCheckKeys = 1024

// FileStats describes a bbolt file's use of disk: FileBytes is the size its
// pages span (the high-water mark: bbolt never shrinks a file), FreeBytes the
// part of it on the freelist (free or pending pages). FileBytes-FreeBytes
// approximates the live data.
type FileStats struct {
	FileBytes int64 `json:"file_bytes"`
	FreeBytes int64 `json:"free_bytes"`
}

// Bloated reports whether the file is worth rebuilding: more than minBytes
// of it, and more than the live data, are free pages.
func (f FileStats) Bloated(minBytes int64) bool {
	return f.FreeBytes > minBytes && f.FreeBytes > f.FileBytes-f.FreeBytes
}

func fileStats(db *bbolt.DB, path string) (FileStats, error) {
	var fs FileStats
	err := guard(path, func() error {
		return db.View(func(tx *bbolt.Tx) error {
			fs.FileBytes = tx.Size()
			return nil
		})
	})
	if err != nil {
		return fs, err
	}
	st := db.Stats()
	fs.FreeBytes = int64(st.FreePageN+st.PendingPageN) * int64(db.Info().PageSize)
	return fs, nil
}

// copyInto writes every bucket and key that src holds into a new bbolt file
// at dstPath (which must not exist), with full pages (keys arrive in order),
// in transactions of at most copyTxBytes, then fsyncs and closes it. It stops
// with ctx.Err() when ctx is cancelled. On error dstPath is removed.
func copyInto(ctx context.Context, src *bbolt.Tx, dstPath string) (err error) {
	dst, err := bbolt.Open(dstPath, fileMode, &bbolt.Options{Timeout: openTimeout, NoSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("storage: create %s: %w", dstPath, err)
	}
	defer func() {
		if cerr := dst.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("storage: close %s: %w", dstPath, cerr)
		}
		if err != nil {
			_ = os.Remove(dstPath)
		}
	}()
	c := &copier{ctx: ctx, dst: dst}
	if err := c.begin(); err != nil {
		return err
	}
	err = src.ForEach(func(name []byte, b *bbolt.Bucket) error {
		return c.bucket([][]byte{name}, b)
	})
	if err == nil {
		err = c.tx.Commit()
	} else {
		_ = c.tx.Rollback()
	}
	if err != nil {
		return fmt.Errorf("storage: copy to %s: %w", dstPath, err)
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("storage: fsync %s: %w", dstPath, err)
	}
	return nil
}

// copier is one compact copy in progress.
type copier struct {
	ctx   context.Context
	dst   *bbolt.DB
	tx    *bbolt.Tx
	bytes int
	keys  int
}

// begin starts a write transaction on the destination. A compact copy is the
// one place that uses bbolt's unmanaged transactions: a copy larger than
// memory must commit in pieces, which one Update cannot do.
func (c *copier) begin() error {
	tx, err := c.dst.Begin(true)
	if err != nil {
		return err
	}
	c.tx, c.bytes = tx, 0
	return nil
}

// dstBucket finds (creating) the destination bucket at path in the current
// transaction.
func (c *copier) dstBucket(path [][]byte) (*bbolt.Bucket, error) {
	b, err := c.tx.CreateBucketIfNotExists(path[0])
	if err != nil {
		return nil, err
	}
	for _, name := range path[1:] {
		if b, err = b.CreateBucketIfNotExists(name); err != nil {
			return nil, err
		}
	}
	b.FillPercent = 1.0
	return b, nil
}

func (c *copier) bucket(path [][]byte, src *bbolt.Bucket) error {
	dst, err := c.dstBucket(path)
	if err != nil {
		return err
	}
	cur := src.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		if v == nil {
			if sub := src.Bucket(k); sub != nil {
				if err := c.bucket(append(path[:len(path):len(path)], k), sub); err != nil {
					return err
				}
				if dst, err = c.dstBucket(path); err != nil { // the transaction may have changed
					return err
				}
				continue
			}
		}
		if err := dst.Put(k, v); err != nil {
			return err
		}
		c.bytes += len(k) + len(v)
		c.keys++
		if c.keys%ctxCheckKeys == 0 {
			if err := c.ctx.Err(); err != nil {
				return err
			}
		}
		if c.bytes >= copyTxBytes {
			if err := c.tx.Commit(); err != nil {
				return err
			}
			if err := c.begin(); err != nil {
				return err
			}
			if dst, err = c.dstBucket(path); err != nil {
				return err
			}
		}
	}
	return nil
}

// swapFile renames from over to and fsyncs the directory, making the swap
// durable: after a crash the directory holds either the old or the new file.
func swapFile(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("storage: swap in %s: %w", to, err)
	}
	return fsutil.SyncDir(filepath.Dir(to))
}

// removeStale removes a leftover temp file; a missing file is fine.
func removeStale(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: remove leftover %s: %w", path, err)
	}
	return nil
}
