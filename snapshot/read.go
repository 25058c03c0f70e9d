package snapshot

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/raftmq/raftmq/internal/fsutil"
)

// Limits on reads.
const (
	MaxChunkBytes   = 64 << 20 // ReadChunk maxBytes
	readBufferBytes = 1 << 20
)

// OpenSnapshot opens the snapshot meta (matched by term and index) and
// returns the metadata read from its header with a reader of the body.
//
// The body is verified as it is read: the reader returns io.EOF only after
// the whole body matched its CRC32C, and ErrChecksum or ErrTruncated
// instead otherwise. Do not trust (e.g. swap in) what was read before io.EOF.
// The caller must Close the reader.
func (s *Store) OpenSnapshot(meta Meta) (Meta, io.ReadCloser, error) {
	return s.open(s.Path(meta))
}

// Verify reads the snapshot file name ("<term>-<index>.snap" in the store,
// or a path) and checks its header, cluster id and body checksum.
func (s *Store) Verify(name string) error {
	_, rc, err := s.open(s.resolve(name))
	if err != nil {
		return err
	}
	defer rc.Close()
	buf := make([]byte, readBufferBytes)
	for {
		_, err := rc.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ReadChunk returns up to maxBytes of the body of snapshot meta starting at
// body offset offset, for streaming to a follower. At offset == meta.Size it
// returns (nil, io.EOF). Chunks are not verified (the receiver checks the
// whole body); the header is, and it must describe the same snapshot as
// meta, else ErrNotFound (the snapshot was deleted or replaced: restart the
// stream from Latest).
func (s *Store) ReadChunk(meta Meta, offset int64, maxBytes int) ([]byte, error) {
	if maxBytes < 1 || maxBytes > MaxChunkBytes {
		return nil, fmt.Errorf("%w: chunk size %d, want 1..%d", ErrChunk, maxBytes, MaxChunkBytes)
	}
	path := s.Path(meta)
	f, hdr, hl, err := s.openFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !hdr.Same(meta) {
		return nil, fmt.Errorf("%w: %s now holds a different snapshot (size %d crc %08x, want size %d crc %08x); restart from the latest",
			ErrNotFound, path, hdr.Size, hdr.CRC, meta.Size, meta.CRC)
	}
	if offset < 0 || offset > hdr.Size {
		return nil, fmt.Errorf("%w: offset %d outside the body of %s (%d bytes)", ErrChunk, offset, path, hdr.Size)
	}
	if offset == hdr.Size {
		return nil, io.EOF
	}
	buf := make([]byte, min(int64(maxBytes), hdr.Size-offset))
	if _, err := f.ReadAt(buf, hl+offset); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("snapshot %s: %w at body offset %d; %s", path, ErrTruncated, offset, adviceDelete)
		}
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return buf, nil
}

// ExtractBody writes the verified body of snapshot meta to dstPath (the
// state.db to swap in) through a temp file in dstPath's directory: write,
// verify, fsync, rename, fsync the directory. On any error dstPath is
// untouched. The caller must have closed the database at dstPath.
func (s *Store) ExtractBody(meta Meta, dstPath string) error {
	_, rc, err := s.OpenSnapshot(meta)
	if err != nil {
		return err
	}
	defer rc.Close()
	dir := filepath.Dir(dstPath)
	f, err := os.CreateTemp(dir, filepath.Base(dstPath)+".*"+tmpSuffix)
	if err != nil {
		return fmt.Errorf("snapshot: extract: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := io.CopyBuffer(onlyWriter{f}, rc, make([]byte, readBufferBytes)); err != nil {
		return fail(fmt.Errorf("snapshot: extract %s to %s: %w", meta.Name(), dstPath, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("snapshot: extract: fsync %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("snapshot: extract: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dstPath); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("snapshot: extract: %w", err)
	}
	return fsutil.SyncDir(dir)
}

// onlyWriter hides *os.File's ReadFrom so CopyBuffer uses our buffer and
// the verifying reader sees every byte.
type onlyWriter struct{ io.Writer }

// open opens path and returns its header and a verifying body reader.
func (s *Store) open(path string) (Meta, io.ReadCloser, error) {
	f, hdr, hl, err := s.openFile(path)
	if err != nil {
		return Meta{}, nil, err
	}
	return hdr, &bodyReader{f: f, r: io.NewSectionReader(f, hl, hdr.Size), want: hdr, path: path}, nil
}

// openFile opens path, checks its header against the store and its length
// against the header.
func (s *Store) openFile(path string) (*os.File, Meta, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, Meta{}, 0, fmt.Errorf("%w: %s (deleted by keep-N, or never taken)", ErrNotFound, path)
		}
		return nil, Meta{}, 0, fmt.Errorf("snapshot: %w", err)
	}
	fail := func(err error) (*os.File, Meta, int64, error) {
		f.Close()
		return nil, Meta{}, 0, err
	}
	hdr, hl, err := readHeader(f)
	if err != nil {
		return fail(fmt.Errorf("snapshot %s: %w; %s", path, err, adviceDelete))
	}
	if err := s.checkMeta(path, hdr); err != nil {
		return fail(err)
	}
	st, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("snapshot: %w", err))
	}
	switch want := hl + hdr.Size; {
	case st.Size() < want:
		return fail(fmt.Errorf("snapshot %s: %w: %d bytes, header says %d; %s", path, ErrTruncated, st.Size(), want, adviceDelete))
	case st.Size() > want:
		return fail(fmt.Errorf("snapshot %s: %w: %d bytes after the body; %s", path, ErrBadHeader, st.Size()-want, adviceDelete))
	}
	return f, hdr, hl, nil
}

// bodyReader reads a snapshot body and verifies its CRC32C at the end.
type bodyReader struct {
	f    *os.File
	r    io.Reader
	want Meta
	path string
	n    int64
	crc  uint32
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	b.crc = crc32.Update(b.crc, castagnoli, p[:n])
	if err != io.EOF {
		return n, err
	}
	if b.n != b.want.Size {
		return n, fmt.Errorf("snapshot %s: %w: body ended after %d of %d bytes; %s", b.path, ErrTruncated, b.n, b.want.Size, adviceDelete)
	}
	if b.crc != b.want.CRC {
		return n, fmt.Errorf("snapshot %s: %w: body CRC32C %08x, header says %08x; %s", b.path, ErrChecksum, b.crc, b.want.CRC, adviceDelete)
	}
	return n, io.EOF
}

func (b *bodyReader) Close() error { return b.f.Close() }

// VerifyFile checks the snapshot file at path offline and read-only (no
// Store is opened, so nothing is deleted): its header, its cluster id
// against clusterID (skipped when clusterID is empty), its length and its
// body checksum. It returns the header even when the body fails.
func VerifyFile(path, clusterID string) (Meta, error) {
	m, err := ReadMeta(path)
	if err != nil {
		return Meta{}, err
	}
	if clusterID == "" {
		clusterID = m.ClusterID
	}
	s := &Store{dir: filepath.Dir(path), clusterID: clusterID, keep: 1}
	return m, s.Verify(path)
}
