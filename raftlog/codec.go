package raftlog

import (
	"encoding/binary"
	"fmt"
)

// Peer message encoding. Pure: no I/O. The broker wraps the bytes in its own
// frame envelope (cluster id, frame version); this format carries its own
// version byte so the core's message layout can change independently.
//
// Layout (uv = canonical encoding/binary uvarint):
//
//	version byte (codecVersion)
//	type    byte (a known MessageType)
//	uv To, From, Term, LogTerm, Index, Commit, RejectHint
//	flags   byte (bit 0: Reject, bit 1: Recovering, bit 2: Demoted; other
//	        bits must be zero)
//	uv len(Context), Context bytes
//	uv len(Entries), then per entry: uv Index, uv Term, type byte, uv len(Data), Data
//	uv Snapshot.Index, uv Snapshot.Term, uv len(Voters), uv each voter,
//	uv len(Learners), uv each learner
//
// Decoding is strict so that every accepted input has exactly one encoding:
// non-minimal uvarints, unknown types, unknown flag bits and trailing bytes
// are all ErrCorruptMessage. Empty slices decode as nil.

// codecVersion is the first byte of every encoded message.
// Version 2 added the snapshot's learners.
const codecVersion byte = 2

const (
	flagReject byte = 1 << 0
	// flagRecovering and flagDemoted were added without a version change:
	// only a node that lost its data sets them, and an older receiver
	// refuses the frame (unknown flags) as it would any it cannot read.
	flagRecovering byte = 1 << 1
	flagDemoted    byte = 1 << 2
	knownFlags          = flagReject | flagRecovering | flagDemoted
)

// Minimum encoded sizes, used to bound counts by the bytes that remain
// before anything is allocated.
const (
	minEntryBytes = 4 // index, term, type, data length: one byte each at least
	minVoterBytes = 1
)

// MarshalMessage encodes m for the peer transport. It never fails: every
// Message value has an encoding. Unknown types still encode; the receiver's
// UnmarshalMessage rejects them.
func MarshalMessage(m Message) []byte {
	b := make([]byte, 0, encodedSize(m))
	b = append(b, codecVersion, byte(m.Type))
	for _, v := range [...]uint64{m.To, m.From, m.Term, m.LogTerm, m.Index, m.Commit, m.RejectHint} {
		b = binary.AppendUvarint(b, v)
	}
	var flags byte
	if m.Reject {
		flags |= flagReject
	}
	if m.Recovering {
		flags |= flagRecovering
	}
	if m.Demoted {
		flags |= flagDemoted
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(m.Context)))
	b = append(b, m.Context...)
	b = binary.AppendUvarint(b, uint64(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		b = binary.AppendUvarint(b, e.Index)
		b = binary.AppendUvarint(b, e.Term)
		b = append(b, byte(e.Type))
		b = binary.AppendUvarint(b, uint64(len(e.Data)))
		b = append(b, e.Data...)
	}
	b = binary.AppendUvarint(b, m.Snapshot.Index)
	b = binary.AppendUvarint(b, m.Snapshot.Term)
	b = binary.AppendUvarint(b, uint64(len(m.Snapshot.Conf.Voters)))
	for _, v := range m.Snapshot.Conf.Voters {
		b = binary.AppendUvarint(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Snapshot.Conf.Learners)))
	for _, v := range m.Snapshot.Conf.Learners {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

// encodedSize is the exact length MarshalMessage produces for m.
func encodedSize(m Message) int {
	n := 2 + 1 // version, type, flags
	for _, v := range [...]uint64{m.To, m.From, m.Term, m.LogTerm, m.Index, m.Commit, m.RejectHint} {
		n += uvarintLen(v)
	}
	n += uvarintLen(uint64(len(m.Context))) + len(m.Context)
	n += uvarintLen(uint64(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		n += uvarintLen(e.Index) + uvarintLen(e.Term) + 1 + uvarintLen(uint64(len(e.Data))) + len(e.Data)
	}
	n += uvarintLen(m.Snapshot.Index) + uvarintLen(m.Snapshot.Term)
	n += uvarintLen(uint64(len(m.Snapshot.Conf.Voters)))
	for _, v := range m.Snapshot.Conf.Voters {
		n += uvarintLen(v)
	}
	n += uvarintLen(uint64(len(m.Snapshot.Conf.Learners)))
	for _, v := range m.Snapshot.Conf.Learners {
		n += uvarintLen(v)
	}
	return n
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// UnmarshalMessage decodes b as produced by MarshalMessage. Any malformed
// input yields an error wrapping ErrCorruptMessage; it never panics. Every
// count is checked against the bytes that remain before anything is
// allocated, so allocation is bounded by a small multiple of len(b). The
// returned message does not alias b.
func UnmarshalMessage(b []byte) (Message, error) {
	d := decoder{buf: b}
	m, err := d.message()
	if err != nil {
		return Message{}, fmt.Errorf("%w: offset %d of %d: %w", ErrCorruptMessage, d.off, len(b), err)
	}
	return m, nil
}

// decoder reads b front to back. Invariant: off <= len(buf).
type decoder struct {
	buf []byte
	off int
	// data is one copy of the input that Entry.Data and Context slice into,
	// so decoding a MsgApp costs one allocation for all payloads.
	data []byte
}

func (d *decoder) remaining() int { return len(d.buf) - d.off }

func (d *decoder) message() (Message, error) {
	var m Message
	version, err := d.byte()
	if err != nil {
		return m, err
	}
	if version != codecVersion {
		return m, fmt.Errorf("unknown codec version %d", version)
	}
	t, err := d.byte()
	if err != nil {
		return m, err
	}
	m.Type = MessageType(t)
	if _, ok := msgTypeNames[m.Type]; !ok {
		return m, fmt.Errorf("unknown message type %d", t)
	}
	for _, p := range [...]*uint64{&m.To, &m.From, &m.Term, &m.LogTerm, &m.Index, &m.Commit, &m.RejectHint} {
		if *p, err = d.uvarint(); err != nil {
			return m, err
		}
	}
	flags, err := d.byte()
	if err != nil {
		return m, err
	}
	if flags&^knownFlags != 0 {
		return m, fmt.Errorf("unknown flags %#x", flags)
	}
	m.Reject = flags&flagReject != 0
	m.Recovering = flags&flagRecovering != 0
	m.Demoted = flags&flagDemoted != 0
	if m.Context, err = d.bytes(); err != nil {
		return m, err
	}
	if m.Entries, err = d.entries(); err != nil {
		return m, err
	}
	if m.Snapshot, err = d.snapshot(); err != nil {
		return m, err
	}
	if d.remaining() != 0 {
		return m, fmt.Errorf("%d trailing bytes", d.remaining())
	}
	return m, nil
}

func (d *decoder) entries() ([]Entry, error) {
	n, err := d.count(minEntryBytes)
	if err != nil || n == 0 {
		return nil, err
	}
	ents := make([]Entry, n)
	for i := range ents {
		e := &ents[i]
		if e.Index, err = d.uvarint(); err != nil {
			return nil, err
		}
		if e.Term, err = d.uvarint(); err != nil {
			return nil, err
		}
		t, err := d.byte()
		if err != nil {
			return nil, err
		}
		e.Type = EntryType(t)
		if e.Type != EntryNormal && e.Type != EntryNoop && e.Type != EntryConfChange {
			return nil, fmt.Errorf("entry %d: unknown entry type %d", i, t)
		}
		if e.Data, err = d.bytes(); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return ents, nil
}

func (d *decoder) snapshot() (SnapshotMeta, error) {
	var s SnapshotMeta
	var err error
	if s.Index, err = d.uvarint(); err != nil {
		return s, err
	}
	if s.Term, err = d.uvarint(); err != nil {
		return s, err
	}
	if s.Conf.Voters, err = d.ids(); err != nil {
		return s, err
	}
	if s.Conf.Learners, err = d.ids(); err != nil {
		return s, err
	}
	return s, nil
}

// ids reads a count and that many uvarint ids; none is nil.
func (d *decoder) ids() ([]uint64, error) {
	n, err := d.count(minVoterBytes)
	if err != nil || n == 0 {
		return nil, err
	}
	out := make([]uint64, n)
	for i := range out {
		if out[i], err = d.uvarint(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// count reads an element count and checks that the remaining input can hold
// that many elements of at least minBytes each.
func (d *decoder) count(minBytes int) (int, error) {
	n, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64(d.remaining()/minBytes) {
		return 0, fmt.Errorf("count %d exceeds the %d bytes left", n, d.remaining())
	}
	return int(n), nil
}

// bytes reads a length-prefixed byte string as a subslice of the decoder's
// private copy of the input (capacity clipped, so an append by the caller
// cannot overwrite a neighbour). Empty strings are nil.
func (d *decoder) bytes() ([]byte, error) {
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(d.remaining()) {
		return nil, fmt.Errorf("length %d exceeds the %d bytes left", n, d.remaining())
	}
	if n == 0 {
		return nil, nil
	}
	if d.data == nil {
		d.data = make([]byte, len(d.buf))
		copy(d.data, d.buf)
	}
	end := d.off + int(n)
	s := d.data[d.off:end:end]
	d.off = end
	return s, nil
}

func (d *decoder) byte() (byte, error) {
	if d.remaining() < 1 {
		return 0, fmt.Errorf("truncated")
	}
	c := d.buf[d.off]
	d.off++
	return c, nil
}

// uvarint reads a canonical (minimal-length) uvarint.
func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.buf[d.off:])
	switch {
	case n == 0:
		return 0, fmt.Errorf("truncated uvarint")
	case n < 0:
		return 0, fmt.Errorf("uvarint overflows 64 bits")
	case n > 1 && d.buf[d.off+n-1] == 0:
		return 0, fmt.Errorf("non-minimal uvarint")
	}
	d.off += n
	return v, nil
}
