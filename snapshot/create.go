package snapshot

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/raftmq/raftmq/internal/fsutil"
)

// writeBufferBytes is the buffer between a body writer and the file.
const writeBufferBytes = 1 << 20

// Create writes a new snapshot. meta gives ClusterID (empty means the
// store's), Index, Term and Voters; write writes the body (for example
// state.db's WriteTo, a bbolt read transaction) and returns the bytes it
// wrote. Create computes Size and CRC, writes a temp file, fsyncs it,
// renames it into place and fsyncs the directory, then deletes all but the
// newest keep snapshots. It returns the complete Meta.
//
// A crash at any point leaves either no new snapshot or a complete one; a
// leftover temp file is removed by the next Open.
func (s *Store) Create(meta Meta, write func(io.Writer) (int64, error)) (Meta, error) {
	if meta.ClusterID == "" {
		meta.ClusterID = s.clusterID
	}
	if meta.ClusterID != s.clusterID {
		return Meta{}, fmt.Errorf("snapshot: create %s: %w: meta has %q, the store %q", meta.Name(), ErrClusterMismatch, meta.ClusterID, s.clusterID)
	}
	meta.Size, meta.CRC = 0, 0
	placeholder, err := meta.MarshalBinary() // same length as the final header
	if err != nil {
		return Meta{}, fmt.Errorf("snapshot: create: %w", err)
	}
	f, err := os.CreateTemp(s.dir, strings.TrimSuffix(meta.Name(), snapSuffix)+".*"+tmpSuffix)
	if err != nil {
		return Meta{}, fmt.Errorf("snapshot: create temp file: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) (Meta, error) {
		f.Close()
		os.Remove(tmp)
		return Meta{}, err
	}
	if _, err := f.Write(placeholder); err != nil {
		return fail(fmt.Errorf("snapshot: write %s: %w", tmp, err))
	}
	bw := bufio.NewWriterSize(f, writeBufferBytes)
	cw := &crcWriter{w: bw, limit: MaxBodyBytes}
	n, err := write(cw)
	if err != nil {
		return fail(fmt.Errorf("snapshot: write body of %s: %w", meta.Name(), err))
	}
	if err := bw.Flush(); err != nil {
		return fail(fmt.Errorf("snapshot: write %s: %w", tmp, err))
	}
	if n != cw.n {
		return fail(fmt.Errorf("snapshot: body writer of %s reported %d bytes but wrote %d", meta.Name(), n, cw.n))
	}
	meta.Size, meta.CRC = cw.n, cw.crc
	hdr, err := meta.MarshalBinary()
	if err != nil {
		return fail(fmt.Errorf("snapshot: create: %w", err))
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return fail(fmt.Errorf("snapshot: write header of %s: %w", tmp, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("snapshot: fsync %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return Meta{}, fmt.Errorf("snapshot: close %s: %w", tmp, err)
	}
	if err := s.install(tmp, meta); err != nil {
		return Meta{}, err
	}
	return meta, nil
}

// install renames a complete, fsynced temp file into place, makes the
// rename durable and prunes old snapshots.
func (s *Store) install(tmp string, meta Meta) error {
	if s.beforeRename != nil {
		s.beforeRename(tmp)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Rename(tmp, filepath.Join(s.dir, meta.Name())); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("snapshot: rename into place: %w", err)
	}
	if err := fsutil.SyncDir(s.dir); err != nil {
		return err
	}
	return s.pruneLocked()
}

// crcWriter counts and checksums what passes through it and refuses to go
// past limit bytes.
type crcWriter struct {
	w     io.Writer
	n     int64
	crc   uint32
	limit int64
}

var errBodyTooLarge = errors.New("snapshot: body exceeds MaxBodyBytes")

func (c *crcWriter) Write(p []byte) (int, error) {
	if c.n+int64(len(p)) > c.limit {
		return 0, fmt.Errorf("%w (%d)", errBodyTooLarge, c.limit)
	}
	n, err := c.w.Write(p)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	c.n += int64(n)
	return n, err
}
