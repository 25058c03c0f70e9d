package storage

import (
	"encoding/binary"
	"fmt"
)

// Op is a state machine operation.
type Op uint8

const (
	OpCreateTopic Op = 1
	OpPut         Op = 2
	OpPop         Op = 3
)

func (o Op) String() string {
	switch o {
	case OpCreateTopic:
		return "create_topic"
	case OpPut:
		return "put"
	case OpPop:
		return "pop"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Command is the payload of an EntryNormal log entry.
type Command struct {
	Op         Op
	Topic      string
	Message    string // OpPut only; ignored by the other ops
	ClientID   string // "" = no session
	Seq        uint64 // the client's request sequence number (with ClientID)
	ProposalID uint64 // the proposing broker's waiter key; does not affect the result
}

// commandVersion is the first byte of an encoded command.
const commandVersion = 1

// Limits DecodeCommand enforces; they are at least the largest values
// config.Validate accepts, so every command a broker proposes decodes.
const (
	maxCommandTopicBytes    = 4096
	maxCommandClientIDBytes = 4096
	maxCommandMessageBytes  = 64 << 20
)

// EncodeCommand encodes c:
//
//	version (1) | op (1) | seq (uvarint) | proposal id (uvarint) |
//	topic, client id, message (each uvarint length + bytes)
func EncodeCommand(c Command) []byte {
	n := 2 + 4*binary.MaxVarintLen64 + len(c.Topic) + len(c.ClientID) + len(c.Message)
	b := make([]byte, 0, n)
	b = append(b, commandVersion, byte(c.Op))
	b = binary.AppendUvarint(b, c.Seq)
	b = binary.AppendUvarint(b, c.ProposalID)
	for _, s := range []string{c.Topic, c.ClientID, c.Message} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// DecodeCommand decodes what EncodeCommand produced. Anything else (unknown
// version or op, empty or oversized topic, truncated or trailing bytes) wraps
// ErrBadCommand. It never panics and allocates no more than len(b).
func DecodeCommand(b []byte) (Command, error) {
	r := reader{b: b}
	var c Command
	if v := r.byte1("version"); r.err == nil && v != commandVersion {
		return Command{}, fmt.Errorf("%w: unknown version %d", ErrBadCommand, v)
	}
	c.Op = Op(r.byte1("op"))
	if r.err == nil && (c.Op < OpCreateTopic || c.Op > OpPop) {
		return Command{}, fmt.Errorf("%w: unknown op %d", ErrBadCommand, c.Op)
	}
	c.Seq = r.uvarint("seq")
	c.ProposalID = r.uvarint("proposal id")
	str := func(what string, limit uint64) string {
		n := r.uvarint(what + " length")
		if r.err == nil && n > limit {
			r.err = fmt.Errorf("%s is %d bytes; the limit is %d", what, n, limit)
			return ""
		}
		return string(r.bytesN(n, what))
	}
	c.Topic = str("topic", maxCommandTopicBytes)
	c.ClientID = str("client id", maxCommandClientIDBytes)
	c.Message = str("message", maxCommandMessageBytes)
	if err := r.done("command"); err != nil {
		return Command{}, fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	if c.Topic == "" {
		return Command{}, fmt.Errorf("%w: empty topic", ErrBadCommand)
	}
	return c, nil
}
