package broker

import (
	"encoding/binary"
	"fmt"

	"github.com/raftmq/raftmq/raftlog"
)

// Peer frames: one ZeroMQ frame per Raft message.
//
//	magic 'R' 'Q' | version (1 byte) | cluster id length (uvarint) | cluster id |
//	sender id (uvarint) | raftlog.MarshalMessage bytes
//
// A frame with another magic, version or cluster id is dropped: it comes from
// another cluster or another release, and must never reach the core.
const (
	frameMagic0  = 'R'
	frameMagic1  = 'Q'
	frameVersion = 1
	// maxClusterIDBytes bounds the cluster id a frame may carry.
	maxClusterIDBytes = 255
)

func encodeFrame(clusterID string, from uint64, m raftlog.Message) []byte {
	body := raftlog.MarshalMessage(m)
	buf := make([]byte, 0, 3+binary.MaxVarintLen64*2+len(clusterID)+len(body))
	buf = append(buf, frameMagic0, frameMagic1, frameVersion)
	buf = binary.AppendUvarint(buf, uint64(len(clusterID)))
	buf = append(buf, clusterID...)
	buf = binary.AppendUvarint(buf, from)
	return append(buf, body...)
}

// decodeFrame checks the envelope and decodes the message. The sender id in
// the envelope must match the message's From.
func decodeFrame(clusterID string, b []byte) (raftlog.Message, error) {
	if len(b) < 3 || b[0] != frameMagic0 || b[1] != frameMagic1 {
		return raftlog.Message{}, fmt.Errorf("%w: not a raftmq peer frame", ErrBadFrame)
	}
	if b[2] != frameVersion {
		return raftlog.Message{}, fmt.Errorf("%w: frame version %d, this node speaks %d", ErrBadFrame, b[2], frameVersion)
	}
	rest := b[3:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > maxClusterIDBytes || n > uint64(len(rest)-k) {
		return raftlog.Message{}, fmt.Errorf("%w: bad cluster id length", ErrBadFrame)
	}
	rest = rest[k:]
	if got := string(rest[:n]); got != clusterID {
		return raftlog.Message{}, fmt.Errorf("%w: frame from cluster %q, this node is in %q", ErrBadFrame, got, clusterID)
	}
	rest = rest[n:]
	from, k := binary.Uvarint(rest)
	if k <= 0 {
		return raftlog.Message{}, fmt.Errorf("%w: bad sender id", ErrBadFrame)
	}
	m, err := raftlog.UnmarshalMessage(rest[k:])
	if err != nil {
		return raftlog.Message{}, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	if m.From != from {
		return raftlog.Message{}, fmt.Errorf("%w: envelope sender %d, message from %d", ErrBadFrame, from, m.From)
	}
	if m.Type.IsLocal() {
		return raftlog.Message{}, fmt.Errorf("%w: local message type %v on the wire", ErrBadFrame, m.Type)
	}
	return m, nil
}
