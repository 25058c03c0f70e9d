package broker

import "errors"

var (
	// ErrStopped is returned by Run when the node stopped itself because it
	// could not go on safely (for example a failed disk write).
	ErrStopped = errors.New("broker: node stopped")
	// ErrBadFrame is returned by decodeFrame for a peer frame that is not
	// ours: wrong magic, version or cluster, or a corrupt message.
	ErrBadFrame = errors.New("broker: bad peer frame")
	// ErrDamaged is returned by New when the data directory is damaged and
	// cannot be repaired from peers (a one-node cluster).
	ErrDamaged = errors.New("broker: data directory damaged")
)
