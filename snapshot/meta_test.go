package snapshot

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

func TestMetaMarshalRoundTrip(t *testing.T) {
	tests := []Meta{
		{ClusterID: "c", Index: 1, Term: 1},
		{ClusterID: testCluster, Index: 1 << 40, Term: 77, Voters: []uint64{1, 2, 3, 4, 5}, Size: 123456, CRC: 0xdeadbeef},
		{ClusterID: string(make([]byte, MaxClusterIDBytes)), Index: 9, Term: 9, Voters: make([]uint64, MaxVoters), Size: MaxBodyBytes},
		{ClusterID: "c", Index: 3, Term: 2, Voters: []uint64{1, 2, 3}, Learners: []uint64{4}, Members: []byte(`{"addrs":{"4":{"ip":"10.0.0.4"}},"removed":[5]}`)},
		{ClusterID: "c", Index: 3, Term: 2, Learners: make([]uint64, MaxVoters), Members: make([]byte, MaxMembersBytes)},
	}
	for _, m := range tests {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(%s) = %v", m.Name(), err)
		}
		var got Meta
		if err := got.UnmarshalBinary(b); err != nil || !got.Same(m) {
			t.Fatalf("UnmarshalBinary(MarshalBinary(%+v)) = %+v, %v", m.Name(), got.Name(), err)
		}
		// Every proper prefix is refused as truncated, never misread.
		for n := range len(b) {
			var p Meta
			if err := p.UnmarshalBinary(b[:n]); !errors.Is(err, ErrTruncated) || !errors.Is(err, ErrBadHeader) {
				t.Fatalf("UnmarshalBinary(first %d of %d bytes) = %v, want ErrBadHeader+ErrTruncated", n, len(b), err)
			}
		}
	}
}

func TestMetaUnmarshalVersion(t *testing.T) {
	b, err := Meta{ClusterID: "c", Index: 1, Term: 1}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b[9] = 3
	var m Meta
	if err := m.UnmarshalBinary(b); !errors.Is(err, ErrBadHeader) || err.Error() != "snapshot: bad header: format version 3, this build reads versions 1 and 2; run a matching raftmq" {
		t.Errorf("UnmarshalBinary(version 3) = %v", err)
	}
}

// marshalV1 encodes m as a version 1 header (voters only), as raftmq
// wrote before snapshots carried learners and the members record.
func marshalV1(m Meta) []byte {
	n := fixedHeaderBytes + len(m.ClusterID) + 8*len(m.Voters)
	b := append([]byte(nil), magic[:]...)
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
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
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// TestMetaReadsVersion1: headers and files written before version 2 are
// still read, with no learners and no members record, and the body is
// found after the shorter header.
func TestMetaReadsVersion1(t *testing.T) {
	m := Meta{ClusterID: testCluster, Index: 7, Term: 3, Voters: []uint64{1, 2, 3}}
	body := []byte("the state")
	m.Size, m.CRC = int64(len(body)), crc32.Checksum(body, castagnoli)
	b := marshalV1(m)
	var got Meta
	if err := got.UnmarshalBinary(b); err != nil || !got.Same(m) || got.Learners != nil || got.Members != nil {
		t.Fatalf("UnmarshalBinary(version 1) = %+v, %v; want %+v", got, err, m)
	}
	for n := range len(b) {
		var p Meta
		if err := p.UnmarshalBinary(b[:n]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("UnmarshalBinary(first %d of %d version 1 bytes) = %v, want ErrTruncated", n, len(b), err)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, m.Name()), append(b, body...), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, testCluster, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(m.Name()); err != nil {
		t.Fatalf("Verify(version 1 file) = %v", err)
	}
	chunk, err := s.ReadChunk(m, 0, 100)
	if err != nil || string(chunk) != string(body) {
		t.Fatalf("ReadChunk(version 1 file) = %q, %v; want %q", chunk, err, body)
	}
}

func FuzzMetaUnmarshal(f *testing.F) {
	for _, m := range []Meta{{ClusterID: "c", Index: 1, Term: 1}, {ClusterID: testCluster, Index: 5, Term: 2, Voters: []uint64{1, 2}, Size: 9},
		{ClusterID: "c", Index: 5, Term: 2, Voters: []uint64{1}, Learners: []uint64{2}, Members: []byte("{}")}} {
		b, _ := m.MarshalBinary()
		f.Add(b)
		f.Add(marshalV1(m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Meta
		if err := m.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("error %v does not wrap ErrBadHeader", err)
			}
			return
		}
		again, err := m.MarshalBinary()
		if len(b) > 9 && b[9] == 1 {
			again = marshalV1(m)
		}
		if err != nil || string(again) != string(b[:len(again)]) {
			t.Fatalf("decoded %+v does not re-encode to its input (err %v)", m, err)
		}
	})
}
