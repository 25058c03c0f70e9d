package rafttest

import "errors"

// Each checker violation wraps one of these, so tests can assert which
// property broke.
var (
	// ErrElectionSafety: two nodes were leader in the same term.
	ErrElectionSafety = errors.New("rafttest: election safety violated")
	// ErrLogMatching: two persisted logs hold an entry with the same index
	// and term but different preceding entries or contents.
	ErrLogMatching = errors.New("rafttest: log matching violated")
	// ErrLeaderCompleteness: a leader lacks an entry committed before its term.
	ErrLeaderCompleteness = errors.New("rafttest: leader completeness violated")
	// ErrStateMachineSafety: two nodes applied different entries at one
	// index, or a node applied out of order.
	ErrStateMachineSafety = errors.New("rafttest: state machine safety violated")
	// ErrCommitRegressed: a live node's commit index decreased.
	ErrCommitRegressed = errors.New("rafttest: commit index decreased")
	// ErrTermRegressed: a node's term decreased while it lived, or fell below
	// its persisted term across a restart.
	ErrTermRegressed = errors.New("rafttest: term decreased")
	// ErrDurability: a node sent a message that depends on state it had not
	// persisted (a term, a vote, or entries it acknowledged).
	ErrDurability = errors.New("rafttest: message sent before its state was persisted")
	// ErrCommitNotDurable: a node reported a commit index that is not
	// persisted on a quorum of nodes.
	ErrCommitNotDurable = errors.New("rafttest: commit index not durable on a quorum")
	// ErrStatusInvariant: a node reported commit beyond its last index.
	ErrStatusInvariant = errors.New("rafttest: status invariant broken")
	// ErrStaleRead: a read index is below an entry committed before the
	// read was requested.
	ErrStaleRead = errors.New("rafttest: stale read index")
	// ErrLiveness: a healed cluster did not elect a leader and commit a
	// proposal within the tick bound.
	ErrLiveness = errors.New("rafttest: no progress after healing")
	// ErrRefusedTraffic: a message a node sent fails raftlog.ValidateMessage
	// or ValidateSender, so a broker would drop real traffic.
	ErrRefusedTraffic = errors.New("rafttest: the validator refuses a message a node sent")
	// ErrCore: the core returned an error or panicked on a valid input.
	ErrCore = errors.New("rafttest: core failed")
)
