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
	// ErrBadReceipt is returned by ParseReceipt for a string no broker
	// issued as a receipt.
	ErrBadReceipt = errors.New("storage: malformed receipt")
	// ErrOutOfRange is returned by OpenRaftDB when raft.db holds a term or
	// index above raftlog.MaxTerm; the message names the file and the fix.
	ErrOutOfRange = errors.New("storage: term or index out of range")
	// ErrInvalid is wrapped for an invalid argument (empty cluster id,
	// MaxSessions < 1, a data dir that is not a directory).
	ErrInvalid = errors.New("storage: invalid argument")
	// ErrWriteFailed is returned by every write after one write
	// transaction failed (its fsync, for example). What the failed
	// transaction wrote may still show through bbolt's mmap without being
	// durable, and Linux forgets dirty pages whose writeback failed, so a
	// retry could report as durable what is not (fsyncgate). The owner
	// must stop and reopen the file.
	ErrWriteFailed = errors.New("storage: an earlier write failed; the file must be reopened")
)

// corruptAdvice tells the operator what to do with a damaged file.
const corruptAdvice = "stop the broker, move the file aside and let the node rejoin from its peers, or restore it from a backup"
