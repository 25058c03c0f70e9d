package snapshot

import "errors"

// Errors returned by this package, wrapped with the file and advice. Test
// with errors.Is. A damaged snapshot is never served: the caller should
// delete it (Store.Remove) and take a new one or fetch one from the leader.
var (
	// ErrChecksum: the header or body does not match its CRC32C.
	ErrChecksum = errors.New("snapshot: checksum mismatch")
	// ErrTruncated: the file (or a received stream) is shorter than its
	// header says.
	ErrTruncated = errors.New("snapshot: truncated")
	// ErrClusterMismatch: the snapshot belongs to another cluster.
	ErrClusterMismatch = errors.New("snapshot: cluster id mismatch")
	// ErrBadHeader: not a raftmq snapshot, an unknown format version, or a
	// header whose fields are out of bounds or disagree with the file name.
	ErrBadHeader = errors.New("snapshot: bad header")
	// ErrNotFound: no such snapshot (never taken, or deleted by keep-N).
	ErrNotFound = errors.New("snapshot: not found")
	// ErrChunk: a received chunk leaves a gap or runs past the declared size.
	ErrChunk = errors.New("snapshot: chunk out of order")
)
