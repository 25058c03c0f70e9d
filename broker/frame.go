package broker

import (
	"encoding/binary"
	"fmt"

	"github.com/raftmq/raftmq/raftlog"
)

// Peer frames: one ZeroMQ frame each.
//
//	magic 'R' 'Q' | version (1 byte) | cluster id length (uvarint) | cluster id |
//	sender id (uvarint) | kind (1 byte) | body
//
// kind frameRaft: the body is raftlog.MarshalMessage bytes. kind
// frameSnapChunk and frameSnapAck carry InstallSnapshot (snapframe.go).
// kind frameRemoved (empty body) tells the receiver that the sender's
// membership has removed it: a member answers so any frame from a removed
// node, which then stops.
// A frame with another magic, version or cluster id is dropped: it comes from
// another cluster or another release, and must never reach the core.
// Version 2 added the kind byte.
const (
	frameMagic0  = 'R'
	frameMagic1  = 'Q'
	frameVersion = 2
	// maxClusterIDBytes bounds the cluster id a frame may carry.
	maxClusterIDBytes = 255
)

// frameKind says what a peer frame's body holds.
type frameKind byte

const (
	frameRaft      frameKind = 1 // a Raft message
	frameSnapChunk frameKind = 2 // leader → follower: a piece of a snapshot file
	frameSnapAck   frameKind = 3 // follower → leader: how much of it arrived
	frameRemoved   frameKind = 4 // member → removed node: you were removed
)

func appendEnvelope(buf []byte, clusterID string, from uint64, kind frameKind) []byte {
	buf = append(buf, frameMagic0, frameMagic1, frameVersion)
	buf = binary.AppendUvarint(buf, uint64(len(clusterID)))
	buf = append(buf, clusterID...)
	buf = binary.AppendUvarint(buf, from)
	return append(buf, byte(kind))
}

func envelopeBytes(clusterID string) int { return 4 + binary.MaxVarintLen64*2 + len(clusterID) }

func encodeFrame(clusterID string, from uint64, m raftlog.Message) []byte {
	body := raftlog.MarshalMessage(m)
	buf := make([]byte, 0, envelopeBytes(clusterID)+len(body))
	return append(appendEnvelope(buf, clusterID, from, frameRaft), body...)
}

// decodeEnvelope checks magic, version and cluster id and returns the
// frame's kind, sender and body.
func decodeEnvelope(clusterID string, b []byte) (frameKind, uint64, []byte, error) {
	if len(b) < 3 || b[0] != frameMagic0 || b[1] != frameMagic1 {
		return 0, 0, nil, fmt.Errorf("%w: not a raftmq peer frame", ErrBadFrame)
	}
	if b[2] != frameVersion {
		return 0, 0, nil, fmt.Errorf("%w: frame version %d, this node speaks %d", ErrBadFrame, b[2], frameVersion)
	}
	rest := b[3:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > maxClusterIDBytes || n > uint64(len(rest)-k) {
		return 0, 0, nil, fmt.Errorf("%w: bad cluster id length", ErrBadFrame)
	}
	rest = rest[k:]
	if got := string(rest[:n]); got != clusterID {
		return 0, 0, nil, fmt.Errorf("%w: frame from cluster %q, this node is in %q", ErrBadFrame, got, clusterID)
	}
	rest = rest[n:]
	from, k := binary.Uvarint(rest)
	if k <= 0 || from == raftlog.None {
		return 0, 0, nil, fmt.Errorf("%w: bad sender id", ErrBadFrame)
	}
	rest = rest[k:]
	if len(rest) < 1 {
		return 0, 0, nil, fmt.Errorf("%w: no frame kind", ErrBadFrame)
	}
	kind := frameKind(rest[0])
	switch kind {
	case frameRaft, frameSnapChunk, frameSnapAck, frameRemoved:
	default:
		return 0, 0, nil, fmt.Errorf("%w: unknown frame kind %d", ErrBadFrame, kind)
	}
	return kind, from, rest[1:], nil
}

// decodeFrame checks the envelope and decodes the Raft message of a
// frameRaft frame. The sender id in the envelope must match the message's
// From.
func decodeFrame(clusterID string, b []byte) (raftlog.Message, error) {
	kind, from, body, err := decodeEnvelope(clusterID, b)
	if err != nil {
		return raftlog.Message{}, err
	}
	if kind != frameRaft {
		return raftlog.Message{}, fmt.Errorf("%w: frame kind %d is not a Raft message", ErrBadFrame, kind)
	}
	return decodeRaftBody(from, body)
}

func decodeRaftBody(from uint64, body []byte) (raftlog.Message, error) {
	m, err := raftlog.UnmarshalMessage(body)
	if err != nil {
		return raftlog.Message{}, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	if m.From != from {
		return raftlog.Message{}, fmt.Errorf("%w: envelope sender %d, message from %d", ErrBadFrame, from, m.From)
	}
	if m.Type.IsLocal() {
		return raftlog.Message{}, fmt.Errorf("%w: local message type %v on the wire", ErrBadFrame, m.Type)
	}
	// Every structural rule, before anything reaches the core.
	if err := raftlog.ValidateMessage(m); err != nil {
		return raftlog.Message{}, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	return m, nil
}
