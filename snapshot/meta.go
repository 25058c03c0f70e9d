package snapshot

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"

	"github.com/raftmq/raftmq/raftlog"
)

// Limits on what a header may declare.
const (
	MaxClusterIDBytes = 255
	MaxVoters         = 1024
	MaxBodyBytes      = 1 << 40 // 1 TiB: far beyond any state.db we expect
	MaxMembersBytes   = 1 << 20 // the broker's members record (JSON)
	// formatVersion is what Create writes. Version 1 (voters only) is still
	// read; version 2 adds the learners and the members record.
	formatVersion    = 2
	fixedHeaderBytes = 8 + 2 + 4 + 8 + 8 + 8 + 4 + 2 + 2 + 4 // magic..voter count, header crc (version 1)
	v2ExtraBytes     = 2 + 4                                 // learner count, members length
	maxHeaderBytes   = fixedHeaderBytes + v2ExtraBytes + MaxClusterIDBytes + 8*2*MaxVoters + MaxMembersBytes
)

var magic = [8]byte{'r', 'a', 'f', 't', 'm', 'q', 'S', 'N'}

// castagnoli is CRC32C. It is the checksum of both header and body: the
// threat is accidental damage (bit rot, torn or truncated writes, a bad
// copy), not an adversary, and CRC32C catches every burst up to 32 bits and
// misses random damage with probability 2^-32 while running at memory speed
// with SSE4.2/ARMv8 instructions (see BenchmarkChecksum: several times
// SHA-256). raft.db log entries use the same checksum.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Meta describes one snapshot: the last log entry it includes, the
// membership then, and its body.
type Meta struct {
	ClusterID string
	Index     uint64 // last included index; >= 1
	Term      uint64 // term of Index; >= 1
	Voters    []uint64
	Learners  []uint64
	// Members is the broker's members record as of Index (each member's
	// addresses, the removed ids), opaque here; empty in version 1 files.
	Members []byte
	// Size and CRC describe the body; Create fills them in.
	Size int64
	CRC  uint32 // CRC32C of the body
}

// Name is the snapshot's file name: "<term>-<index>.snap", both as 16 hex
// digits so names sort by term, then index.
func (m Meta) Name() string { return fmt.Sprintf("%016x-%016x.snap", m.Term, m.Index) }

// Raft returns the metadata the consensus core uses.
func (m Meta) Raft() raftlog.SnapshotMeta {
	return raftlog.SnapshotMeta{Index: m.Index, Term: m.Term, Conf: raftlog.ConfState{Voters: slices.Clone(m.Voters), Learners: slices.Clone(m.Learners)}}
}

// Same reports whether m and o describe the same snapshot bytes.
func (m Meta) Same(o Meta) bool {
	return m.ClusterID == o.ClusterID && m.Index == o.Index && m.Term == o.Term &&
		m.Size == o.Size && m.CRC == o.CRC && slices.Equal(m.Voters, o.Voters) &&
		slices.Equal(m.Learners, o.Learners) && bytes.Equal(m.Members, o.Members)
}

// check validates the fields a header may hold.
func (m Meta) check() error {
	switch {
	case m.Index == 0 || m.Term == 0:
		return fmt.Errorf("index %d, term %d: both must be >= 1", m.Index, m.Term)
	case m.ClusterID == "" || len(m.ClusterID) > MaxClusterIDBytes:
		return fmt.Errorf("cluster id of %d bytes, want 1..%d", len(m.ClusterID), MaxClusterIDBytes)
	case len(m.Voters) > MaxVoters || len(m.Learners) > MaxVoters:
		return fmt.Errorf("%d voters and %d learners, at most %d each", len(m.Voters), len(m.Learners), MaxVoters)
	case len(m.Members) > MaxMembersBytes:
		return fmt.Errorf("members record of %d bytes, at most %d", len(m.Members), MaxMembersBytes)
	case m.Size < 0 || m.Size > MaxBodyBytes:
		return fmt.Errorf("body size %d, want 0..%d", m.Size, int64(MaxBodyBytes))
	}
	return nil
}

// headerLen is the encoded header size of m.
func (m Meta) headerLen() int {
	return fixedHeaderBytes + v2ExtraBytes + len(m.ClusterID) + 8*len(m.Voters) + 8*len(m.Learners) + len(m.Members)
}

// MarshalBinary encodes m as a snapshot file header (the format is also a
// convenient wire encoding of Meta):
//
//	magic "raftmqSN" | version u16 | header length u32 | index u64 | term u64 |
//	body size u64 | body CRC32C u32 | cluster id length u16 | cluster id |
//	voter count u16 | voters u64... | learner count u16 | learners u64... |
//	members length u32 | members | header CRC32C u32 over all before it
//
// (Version 1, still read, has no learners and no members record.)
// All integers are big-endian.
func (m Meta) MarshalBinary() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	b := make([]byte, 0, m.headerLen())
	b = append(b, magic[:]...)
	b = binary.BigEndian.AppendUint16(b, formatVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(m.headerLen()))
	b = binary.BigEndian.AppendUint64(b, m.Index)
	b = binary.BigEndian.AppendUint64(b, m.Term)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Size))
	b = binary.BigEndian.AppendUint32(b, m.CRC)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.ClusterID)))
	b = append(b, m.ClusterID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Voters)))
	for _, v := range m.Voters {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Learners)))
	for _, v := range m.Learners {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Members)))
	b = append(b, m.Members...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if len(b) != m.headerLen() {
		panic(fmt.Sprintf("snapshot: header encoded to %d bytes, want %d", len(b), m.headerLen()))
	}
	return b, nil
}

// UnmarshalBinary decodes a header produced by MarshalBinary. Errors wrap
// ErrBadHeader, plus ErrChecksum or ErrTruncated where that is the cause.
func (m *Meta) UnmarshalBinary(b []byte) error {
	if len(b) < 14 {
		return fmt.Errorf("%w: %w: %d bytes, a header has at least %d", ErrBadHeader, ErrTruncated, len(b), fixedHeaderBytes)
	}
	if !bytes.Equal(b[:8], magic[:]) {
		return fmt.Errorf("%w: starts with %q, not a raftmq snapshot", ErrBadHeader, b[:8])
	}
	version := binary.BigEndian.Uint16(b[8:])
	if version != 1 && version != formatVersion {
		return fmt.Errorf("%w: format version %d, this build reads versions 1 and %d; run a matching raftmq", ErrBadHeader, version, formatVersion)
	}
	n := int(binary.BigEndian.Uint32(b[10:]))
	if n < fixedHeaderBytes || n > maxHeaderBytes {
		return fmt.Errorf("%w: header length %d outside %d..%d", ErrBadHeader, n, fixedHeaderBytes, maxHeaderBytes)
	}
	if len(b) < n {
		return fmt.Errorf("%w: %w: header of %d bytes, only %d present", ErrBadHeader, ErrTruncated, n, len(b))
	}
	b = b[:n]
	if want, got := binary.BigEndian.Uint32(b[n-4:]), crc32.Checksum(b[:n-4], castagnoli); want != got {
		return fmt.Errorf("%w: %w: header CRC32C %08x, stored %08x", ErrBadHeader, ErrChecksum, got, want)
	}
	// The CRC matched, so the lengths below were written by MarshalBinary;
	// still check them against n rather than trust them.
	var out Meta
	p := 14
	out.Index = binary.BigEndian.Uint64(b[p:])
	out.Term = binary.BigEndian.Uint64(b[p+8:])
	size := binary.BigEndian.Uint64(b[p+16:])
	out.CRC = binary.BigEndian.Uint32(b[p+24:])
	p += 28
	idLen := int(binary.BigEndian.Uint16(b[p:]))
	p += 2
	if p+idLen+2+4 > n {
		return fmt.Errorf("%w: cluster id length %d overruns the header", ErrBadHeader, idLen)
	}
	out.ClusterID = string(b[p : p+idLen])
	p += idLen
	nv := int(binary.BigEndian.Uint16(b[p:]))
	p += 2
	if version == 1 {
		if p+8*nv+4 != n {
			return fmt.Errorf("%w: %d voters do not fit a header of %d bytes", ErrBadHeader, nv, n)
		}
		out.Voters = readIDs(b[p:], nv)
	} else {
		if p+8*nv+2+4+4 > n {
			return fmt.Errorf("%w: %d voters overrun the header", ErrBadHeader, nv)
		}
		out.Voters = readIDs(b[p:], nv)
		p += 8 * nv
		nl := int(binary.BigEndian.Uint16(b[p:]))
		p += 2
		if p+8*nl+4+4 > n {
			return fmt.Errorf("%w: %d learners overrun the header", ErrBadHeader, nl)
		}
		out.Learners = readIDs(b[p:], nl)
		p += 8 * nl
		nm := int(binary.BigEndian.Uint32(b[p:]))
		p += 4
		if p+nm+4 != n {
			return fmt.Errorf("%w: a members record of %d bytes does not fit a header of %d bytes", ErrBadHeader, nm, n)
		}
		if nm > 0 {
			out.Members = slices.Clone(b[p : p+nm])
		}
	}
	if size > MaxBodyBytes {
		return fmt.Errorf("%w: body size %d exceeds %d", ErrBadHeader, size, int64(MaxBodyBytes))
	}
	out.Size = int64(size)
	if err := out.check(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	*m = out
	return nil
}

func readIDs(b []byte, n int) []uint64 {
	var out []uint64
	for i := range n {
		out = append(out, binary.BigEndian.Uint64(b[8*i:]))
	}
	return out
}

// readHeader reads and decodes the header at the start of f.
func readHeader(f io.ReaderAt) (Meta, int64, error) {
	buf := make([]byte, fixedHeaderBytes)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return Meta{}, 0, err
	}
	buf = buf[:n]
	if n >= 14 && bytes.Equal(buf[:8], magic[:]) {
		if hl := int(binary.BigEndian.Uint32(buf[10:])); hl > n && hl <= maxHeaderBytes {
			buf = make([]byte, hl)
			n, err = f.ReadAt(buf, 0)
			if err != nil && err != io.EOF {
				return Meta{}, 0, err
			}
			buf = buf[:n]
		}
	}
	var m Meta
	if err := m.UnmarshalBinary(buf); err != nil {
		return Meta{}, 0, err
	}
	return m, int64(binary.BigEndian.Uint32(buf[10:])), nil
}

// ReadMeta reads and checks the header of the snapshot file at path (not
// the body; see Store.Verify). For offline inspection.
func ReadMeta(path string) (Meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return Meta{}, fmt.Errorf("snapshot %s: %w", path, err)
	}
	defer f.Close()
	m, _, err := readHeader(f)
	if err != nil {
		return Meta{}, fmt.Errorf("snapshot %s: %w; %s", path, err, adviceDelete)
	}
	return m, nil
}

// adviceDelete is appended to errors about a damaged snapshot file.
const adviceDelete = "delete the file: the node takes a new snapshot or fetches one from the leader"
