package snapshot

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
)

// Receiver installs a snapshot that arrives in chunks (InstallSnapshot).
// Chunks are appended in order to a temp file; Finish verifies size and
// checksum against the declared Meta and renames the file into place.
//
// A Store has at most one Receiver in progress. A Receiver is used by one
// goroutine at a time.
type Receiver struct {
	s    *Store
	meta Meta
	f    *os.File
	tmp  string
	hl   int64  // header length: body offset 0 is at file offset hl
	off  int64  // body bytes received so far
	crc  uint32 // CRC32C of body[:off]
	done bool   // finished or aborted
}

// NewReceiver starts receiving the snapshot meta (as declared by the
// leader: Size and CRC set). If a receive of the same snapshot is in
// progress it is returned as is, so the transfer resumes at its Offset; a
// receive of any other snapshot is aborted (a newer leader or snapshot
// supersedes it).
func (s *Store) NewReceiver(meta Meta) (*Receiver, error) {
	hdr, err := meta.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("snapshot: receive: %w", err)
	}
	if meta.ClusterID != s.clusterID {
		return nil, fmt.Errorf("snapshot: receive %s: %w: sender is in cluster %q, this node in %q; check the cluster files",
			meta.Name(), ErrClusterMismatch, meta.ClusterID, s.clusterID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.recv; r != nil {
		if r.meta.Same(meta) {
			return r, nil
		}
		r.abortLocked()
	}
	f, err := os.CreateTemp(s.dir, strings.TrimSuffix(meta.Name(), snapSuffix)+".recv.*"+tmpSuffix)
	if err != nil {
		return nil, fmt.Errorf("snapshot: receive: %w", err)
	}
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("snapshot: receive: write %s: %w", f.Name(), err)
	}
	r := &Receiver{s: s, meta: meta, f: f, tmp: f.Name(), hl: int64(len(hdr))}
	s.recv = r
	return r, nil
}

// Meta is the snapshot being received.
func (r *Receiver) Meta() Meta { return r.meta }

// Offset is the number of body bytes received: the offset of the next
// chunk. A sender resumes from here after a lost chunk or a reconnect.
func (r *Receiver) Offset() int64 { return r.off }

// Write stores the chunk data at body offset offset. Chunks must come in
// order: offset must not be past Offset() (a gap is ErrChunk; the sender
// should resume from Offset()). A chunk that starts before Offset() is a
// retransmission: the bytes already held are skipped. A chunk running past
// the declared size is ErrChunk.
func (r *Receiver) Write(offset int64, data []byte) error {
	if r.done {
		return fmt.Errorf("%w: receive of %s already finished or aborted", ErrChunk, r.meta.Name())
	}
	end := offset + int64(len(data))
	switch {
	case offset < 0:
		return fmt.Errorf("%w: negative offset %d", ErrChunk, offset)
	case offset > r.off:
		return fmt.Errorf("%w: chunk at offset %d leaves a gap; resume from offset %d", ErrChunk, offset, r.off)
	case end > r.meta.Size:
		return fmt.Errorf("%w: chunk [%d, %d) runs past the declared size %d of %s", ErrChunk, offset, end, r.meta.Size, r.meta.Name())
	case end <= r.off:
		return nil // all already held
	}
	data = data[r.off-offset:]
	if _, err := r.f.WriteAt(data, r.hl+r.off); err != nil {
		return fmt.Errorf("snapshot: receive: write %s: %w", r.tmp, err)
	}
	r.crc = crc32.Update(r.crc, castagnoli, data)
	r.off += int64(len(data))
	return nil
}

// Finish checks that the whole body arrived and matches the declared
// checksum, then fsyncs, renames the file into place (deleting all but the
// newest keep snapshots) and returns its path. If bytes are missing it
// returns ErrTruncated and the receive stays open; on a checksum mismatch
// the receive is aborted (ErrChecksum: start again from offset 0).
func (r *Receiver) Finish() (string, error) {
	if r.done {
		return "", fmt.Errorf("%w: receive of %s already finished or aborted", ErrChunk, r.meta.Name())
	}
	if r.off < r.meta.Size {
		return "", fmt.Errorf("snapshot: receive %s: %w: have %d of %d bytes; resume from offset %d",
			r.meta.Name(), ErrTruncated, r.off, r.meta.Size, r.off)
	}
	if r.crc != r.meta.CRC {
		r.Abort()
		return "", fmt.Errorf("snapshot: receive %s: %w: received body CRC32C %08x, sender declared %08x; receive it again from offset 0",
			r.meta.Name(), ErrChecksum, r.crc, r.meta.CRC)
	}
	if err := r.f.Sync(); err != nil {
		r.Abort()
		return "", fmt.Errorf("snapshot: receive: fsync %s: %w", r.tmp, err)
	}
	err := r.f.Close()
	r.s.mu.Lock()
	r.done = true
	if r.s.recv == r {
		r.s.recv = nil
	}
	r.s.mu.Unlock()
	if err != nil {
		os.Remove(r.tmp)
		return "", fmt.Errorf("snapshot: receive: close %s: %w", r.tmp, err)
	}
	if err := r.s.install(r.tmp, r.meta); err != nil {
		return "", err
	}
	path := r.s.Path(r.meta)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w: received %s is older than the newest %d snapshots and was deleted", ErrNotFound, r.meta.Name(), r.s.keep)
	}
	return path, nil
}

// Abort discards the receive and its temp file. It is safe to call more
// than once and after Finish.
func (r *Receiver) Abort() {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.abortLocked()
}

func (r *Receiver) abortLocked() {
	if r.done {
		return
	}
	r.done = true
	r.f.Close()
	os.Remove(r.tmp)
	if r.s.recv == r {
		r.s.recv = nil
	}
}
