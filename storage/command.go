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
	// Leased delivery (decision 16).
	OpReceive Op = 4 // lease the first ready message for LeaseMs
	OpAck     Op = 5 // remove the message of Receipt
	OpNack    Op = 6 // make the message of Receipt ready again, after DelayMs
	OpExtend  Op = 7 // the lease of Receipt now ends LeaseMs after the clock
	// OpTick only moves the clock to TimeMs, expiring what is due; the
	// leader proposes it when the earliest lease ends. It names no topic.
	OpTick Op = 8
)

func (o Op) String() string {
	switch o {
	case OpCreateTopic:
		return "create_topic"
	case OpPut:
		return "put"
	case OpPop:
		return "pop"
	case OpReceive:
		return "receive"
	case OpAck:
		return "ack"
	case OpNack:
		return "nack"
	case OpExtend:
		return "extend"
	case OpTick:
		return "tick"
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

	// TimeMs is the proposing leader's wall clock (Unix ms). Apply moves
	// the state machine's clock to it when it is later, never back; 0
	// leaves the clock alone (entries written before leases existed).
	TimeMs uint64
	// LeaseMs is the lease of OpReceive and OpExtend; DelayMs the delay of
	// OpNack.
	LeaseMs uint64
	DelayMs uint64
	// Receipt names one delivery (OpAck, OpNack, OpExtend).
	Receipt string
	// MaxDeliveries (0 = no limit) and DeadLetter are OpCreateTopic's.
	MaxDeliveries uint64
	DeadLetter    string
	// Wait marks an OpPop or OpReceive whose client waits for a message:
	// finding none, it changes nothing, not even the client's session, so
	// the broker may propose it again when a message arrives.
	Wait bool
}

// Command encoding versions: 1 before leased delivery (still decoded, for
// logs written by older brokers), 2 since.
const (
	commandVersion1 = 1
	commandVersion  = 2
)

// Limits DecodeCommand enforces; they are at least the largest values
// config.Validate accepts, so every command a broker proposes decodes.
const (
	maxCommandTopicBytes    = 4096
	maxCommandClientIDBytes = 4096
	maxCommandMessageBytes  = 64 << 20
	maxCommandReceiptBytes  = 128
)

const commandFlagWait = 1 << 0

// EncodeCommand encodes c:
//
//	version (1) | op (1) | seq (uvarint) | proposal id (uvarint) |
//	topic, client id, message (each uvarint length + bytes) |
//	time ms, lease ms, delay ms, max deliveries (uvarints) | flags (1) |
//	receipt, dead letter (each uvarint length + bytes)
func EncodeCommand(c Command) []byte {
	n := 3 + 8*binary.MaxVarintLen64 + len(c.Topic) + len(c.ClientID) + len(c.Message) + len(c.Receipt) + len(c.DeadLetter)
	b := make([]byte, 0, n)
	b = append(b, commandVersion, byte(c.Op))
	b = binary.AppendUvarint(b, c.Seq)
	b = binary.AppendUvarint(b, c.ProposalID)
	for _, s := range []string{c.Topic, c.ClientID, c.Message} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, v := range []uint64{c.TimeMs, c.LeaseMs, c.DelayMs, c.MaxDeliveries} {
		b = binary.AppendUvarint(b, v)
	}
	var flags byte
	if c.Wait {
		flags |= commandFlagWait
	}
	b = append(b, flags)
	for _, s := range []string{c.Receipt, c.DeadLetter} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// DecodeCommand decodes what EncodeCommand produced (and version 1
// commands). Anything else (unknown version or op, empty or oversized
// topic, truncated or trailing bytes) wraps ErrBadCommand. It never panics
// and allocates no more than len(b).
func DecodeCommand(b []byte) (Command, error) {
	r := reader{b: b}
	var c Command
	v := r.byte1("version")
	if r.err == nil && v != commandVersion && v != commandVersion1 {
		return Command{}, fmt.Errorf("%w: unknown version %d", ErrBadCommand, v)
	}
	c.Op = Op(r.byte1("op"))
	maxOp := OpTick
	if v == commandVersion1 {
		maxOp = OpPop
	}
	if r.err == nil && (c.Op < OpCreateTopic || c.Op > maxOp) {
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
	if v == commandVersion {
		c.TimeMs = r.uvarint("time")
		c.LeaseMs = r.uvarint("lease")
		c.DelayMs = r.uvarint("delay")
		c.MaxDeliveries = r.uvarint("max deliveries")
		flags := r.byte1("flags")
		if r.err == nil && flags&^commandFlagWait != 0 {
			return Command{}, fmt.Errorf("%w: unknown flags %#x", ErrBadCommand, flags)
		}
		c.Wait = flags&commandFlagWait != 0
		c.Receipt = str("receipt", maxCommandReceiptBytes)
		c.DeadLetter = str("dead letter", maxCommandTopicBytes)
	}
	if err := r.done("command"); err != nil {
		return Command{}, fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	if c.Topic == "" && c.Op != OpTick {
		return Command{}, fmt.Errorf("%w: empty topic", ErrBadCommand)
	}
	return c, nil
}
