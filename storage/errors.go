package storage

import "errors"

var (
	// ErrCorrupt is wrapped by every error that reports damaged data: a file
	// that is not a bbolt database, a truncated file, a log entry whose
	// checksum does not match, a record that does not decode. The message
	// names the file and, for log entries, the index.
	ErrCorrupt = errors.New("storage: data file is corrupt")
	// ErrClusterMismatch is returned by OpenRaftDB when raft.db belongs to
	// another cluster.
	ErrClusterMismatch = errors.New("storage: cluster id mismatch")
	// ErrLocked is returned when another process (usually a running broker)
	// holds the file's lock.
	ErrLocked = errors.New("storage: data file is locked")
	// ErrBadCommand is returned by DecodeCommand for bytes that are not a
	// command, and wrapped by StateDB.Apply for a log entry that does not
	// decode.
	ErrBadCommand = errors.New("storage: bad command")
	// ErrInvalid is wrapped for an invalid argument (empty cluster id,
	// MaxSessions < 1, a data dir that is not a directory).
	ErrInvalid = errors.New("storage: invalid argument")
	// ErrWriteFailed is wrapped when a state.db transaction could not be
	// written or synced. It is sticky: the StateDB refuses every later call,
	// since the failed pages may show through its mmap; the process must
	// stop and re-apply from the file after a restart.
	ErrWriteFailed = errors.New("storage: write failed")
)

// corruptAdvice tells the operator what to do with a damaged file.
const corruptAdvice = "stop the broker, move the file aside and let the node rejoin from its peers, or restore it from a backup"
