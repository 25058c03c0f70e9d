package broker

import (
	"encoding/binary"
	"fmt"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/snapshot"
)

// snapChunk is one piece of a snapshot file on its way to a follower.
//
// Body of a frameSnapChunk frame:
//
//	to (uvarint) | MsgSnap length (uvarint) | raftlog.MarshalMessage(MsgSnap) |
//	header length (uvarint) | snapshot.Meta.MarshalBinary() | offset (u64) | data
//
// The MsgSnap is what the follower's core steps once the whole file arrived;
// the snapshot header says which file (size and CRC32C) the data belongs to.
type snapChunk struct {
	to     uint64
	msg    raftlog.Message
	meta   snapshot.Meta
	offset int64
	data   []byte
}

// ackStatus is the follower's state of a transfer.
type ackStatus byte

const (
	ackProgress ackStatus = 0 // offset bytes held; send from there
	ackDone     ackStatus = 1 // the whole file arrived and verified
	ackFailed   ackStatus = 2 // the transfer failed (checksum, disk): give up
)

// snapAck is the follower's answer to chunks. Body of a frameSnapAck frame:
//
//	to (uvarint) | index (u64) | term (u64) | body CRC32C (u32) | offset (u64) | status (1 byte)
type snapAck struct {
	from   uint64 // set from the envelope on receipt
	to     uint64
	index  uint64
	term   uint64
	crc    uint32
	offset int64
	status ackStatus
}

// matches reports whether a is about the snapshot m.
func (a snapAck) matches(m snapshot.Meta) bool {
	return a.index == m.Index && a.term == m.Term && a.crc == m.CRC
}

// maxSnapChunkBytes bounds the data a chunk frame may carry.
const maxSnapChunkBytes = config.MaxSnapshotChunkBytes

func encodeSnapChunk(clusterID string, from uint64, c snapChunk) []byte {
	msg := raftlog.MarshalMessage(c.msg)
	hdr, err := c.meta.MarshalBinary()
	if err != nil {
		panic(fmt.Sprintf("broker: snapshot header %+v does not encode: %v", c.meta, err))
	}
	buf := make([]byte, 0, envelopeBytes(clusterID)+4*binary.MaxVarintLen64+len(msg)+len(hdr)+8+len(c.data))
	buf = appendEnvelope(buf, clusterID, from, frameSnapChunk)
	buf = binary.AppendUvarint(buf, c.to)
	buf = binary.AppendUvarint(buf, uint64(len(msg)))
	buf = append(buf, msg...)
	buf = binary.AppendUvarint(buf, uint64(len(hdr)))
	buf = append(buf, hdr...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(c.offset))
	return append(buf, c.data...)
}

// decodeSnapChunk decodes the body of a frameSnapChunk frame from sender
// from. data aliases body.
func decodeSnapChunk(from uint64, body []byte) (snapChunk, error) {
	var c snapChunk
	bad := func(what string, args ...any) (snapChunk, error) {
		return snapChunk{}, fmt.Errorf("%w: snapshot chunk: %s", ErrBadFrame, fmt.Sprintf(what, args...))
	}
	to, k := binary.Uvarint(body)
	if k <= 0 {
		return bad("bad destination")
	}
	c.to, body = to, body[k:]
	n, k := binary.Uvarint(body)
	if k <= 0 || n > uint64(len(body)-k) {
		return bad("bad message length")
	}
	msg, err := decodeRaftBody(from, body[k:k+int(n)])
	if err != nil {
		return snapChunk{}, err
	}
	if msg.Type != raftlog.MsgSnap || msg.To != c.to {
		return bad("carries %v to %d, want MsgSnap to %d", msg.Type, msg.To, c.to)
	}
	c.msg, body = msg, body[k+int(n):]
	n, k = binary.Uvarint(body)
	if k <= 0 || n > uint64(len(body)-k) {
		return bad("bad header length")
	}
	if err := c.meta.UnmarshalBinary(body[k : k+int(n)]); err != nil {
		return bad("%v", err)
	}
	body = body[k+int(n):]
	if c.meta.Index != msg.Snapshot.Index || c.meta.Term != msg.Snapshot.Term {
		return bad("file %d/%d, message %d/%d", c.meta.Index, c.meta.Term, msg.Snapshot.Index, msg.Snapshot.Term)
	}
	if len(body) < 8 {
		return bad("no offset")
	}
	off := binary.BigEndian.Uint64(body)
	c.data = body[8:]
	if len(c.data) > maxSnapChunkBytes || off > uint64(c.meta.Size) || uint64(len(c.data)) > uint64(c.meta.Size)-off {
		return bad("%d bytes at offset %d of a %d-byte body", len(c.data), off, c.meta.Size)
	}
	c.offset = int64(off)
	return c, nil
}

func encodeSnapAck(clusterID string, from uint64, a snapAck) []byte {
	buf := make([]byte, 0, envelopeBytes(clusterID)+binary.MaxVarintLen64+29)
	buf = appendEnvelope(buf, clusterID, from, frameSnapAck)
	buf = binary.AppendUvarint(buf, a.to)
	buf = binary.BigEndian.AppendUint64(buf, a.index)
	buf = binary.BigEndian.AppendUint64(buf, a.term)
	buf = binary.BigEndian.AppendUint32(buf, a.crc)
	buf = binary.BigEndian.AppendUint64(buf, uint64(a.offset))
	return append(buf, byte(a.status))
}

func decodeSnapAck(from uint64, body []byte) (snapAck, error) {
	to, k := binary.Uvarint(body)
	if k <= 0 || len(body)-k != 29 {
		return snapAck{}, fmt.Errorf("%w: snapshot ack of %d bytes", ErrBadFrame, len(body))
	}
	b := body[k:]
	a := snapAck{
		from:   from,
		to:     to,
		index:  binary.BigEndian.Uint64(b),
		term:   binary.BigEndian.Uint64(b[8:]),
		crc:    binary.BigEndian.Uint32(b[16:]),
		status: ackStatus(b[28]),
	}
	off := binary.BigEndian.Uint64(b[20:])
	if off > snapshot.MaxBodyBytes || a.status > ackFailed {
		return snapAck{}, fmt.Errorf("%w: snapshot ack offset %d status %d", ErrBadFrame, off, a.status)
	}
	a.offset = int64(off)
	return a, nil
}
