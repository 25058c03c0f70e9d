package raftlog

import "errors"

var (
	// ErrCompacted is returned by Storage when the requested index was
	// discarded by log compaction.
	ErrCompacted = errors.New("raftlog: requested index is compacted")
	// ErrUnavailable is returned by Storage when the requested index is
	// beyond the last persisted entry.
	ErrUnavailable = errors.New("raftlog: requested entry is unavailable")
	// ErrProposalDropped is returned by Propose when the node cannot accept a
	// proposal now: it is not the leader, it is transferring leadership, or
	// the uncommitted-bytes limit is reached.
	ErrProposalDropped = errors.New("raftlog: proposal dropped")
	// ErrBadConfig is wrapped by New for an invalid Config.
	ErrBadConfig = errors.New("raftlog: invalid config")
	// ErrCorruptMessage is returned by UnmarshalMessage for a frame that does
	// not decode.
	ErrCorruptMessage = errors.New("raftlog: corrupt message")
	// ErrInvalidMessage is wrapped by ValidateMessage and ValidateSender for
	// a message that decodes but breaks a structural rule (a term out of
	// bounds, entries out of order, a stranger as sender), and returned by
	// Step for such a message that reaches it anyway.
	ErrInvalidMessage = errors.New("raftlog: invalid message")
	// ErrBadConfChange is wrapped by ProposeConfChange (and
	// ConfState.Apply) for a change that makes no sense in the current
	// membership, or that the leader refuses now (another change is
	// uncommitted, a learner to promote lags).
	ErrBadConfChange = errors.New("raftlog: configuration change refused")
)

// ErrSnapOutOfDate is returned by MemoryStorage when a snapshot is not newer
// than the one it holds.
var ErrSnapOutOfDate = errors.New("raftlog: snapshot is out of date")
