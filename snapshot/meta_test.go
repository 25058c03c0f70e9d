package snapshot

import (
	"errors"
	"testing"
)

func TestMetaMarshalRoundTrip(t *testing.T) {
	tests := []Meta{
		{ClusterID: "c", Index: 1, Term: 1},
		{ClusterID: testCluster, Index: 1 << 40, Term: 77, Voters: []uint64{1, 2, 3, 4, 5}, Size: 123456, CRC: 0xdeadbeef},
		{ClusterID: string(make([]byte, MaxClusterIDBytes)), Index: 9, Term: 9, Voters: make([]uint64, MaxVoters), Size: MaxBodyBytes},
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
	b[9] = 2
	var m Meta
	if err := m.UnmarshalBinary(b); !errors.Is(err, ErrBadHeader) || err.Error() != "snapshot: bad header: format version 2, this build reads version 1; run a matching raftmq" {
		t.Errorf("UnmarshalBinary(version 2) = %v", err)
	}
}

func FuzzMetaUnmarshal(f *testing.F) {
	for _, m := range []Meta{{ClusterID: "c", Index: 1, Term: 1}, {ClusterID: testCluster, Index: 5, Term: 2, Voters: []uint64{1, 2}, Size: 9}} {
		b, _ := m.MarshalBinary()
		f.Add(b)
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
		if err != nil || string(again) != string(b[:len(again)]) {
			t.Fatalf("decoded %+v does not re-encode to its input (err %v)", m, err)
		}
	})
}
