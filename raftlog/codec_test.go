package raftlog

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"runtime"
	"testing"
)

// codecSamples is one valid message of every type, with the fields that type
// uses (and some it does not, which must survive too).
func codecSamples() []Message {
	ents := []Entry{
		{Index: 5, Term: 2, Type: EntryNoop},
		{Index: 6, Term: 2, Type: EntryNormal, Data: []byte("put q1 hello")},
		{Index: math.MaxUint64, Term: math.MaxUint64, Type: EntryNormal, Data: []byte{0, 0xff}},
	}
	return []Message{
		{Type: MsgHup, To: 1, From: 1},
		{Type: MsgBeat, To: 1, From: 1},
		{Type: MsgProp, To: 1, From: 1, Entries: []Entry{{Type: EntryNormal, Data: []byte("x")}}},
		{Type: MsgApp, To: 2, From: 1, Term: 2, LogTerm: 1, Index: 4, Commit: 3, Entries: ents},
		{Type: MsgApp, To: 2, From: 1, Term: 2, LogTerm: 2, Index: 6, Commit: 6},
		{Type: MsgAppResp, To: 1, From: 2, Term: 2, Index: 6},
		{Type: MsgAppResp, To: 1, From: 2, Term: 2, Index: 9, Reject: true, RejectHint: 4, LogTerm: 1},
		{Type: MsgVote, To: 3, From: 1, Term: 7, LogTerm: 6, Index: 120},
		{Type: MsgVote, To: 3, From: 1, Term: 7, LogTerm: 6, Index: 120, Context: []byte("transfer")},
		{Type: MsgVoteResp, To: 1, From: 3, Term: 7},
		{Type: MsgVoteResp, To: 1, From: 3, Term: 7, Reject: true},
		{Type: MsgPreVote, To: 2, From: 1, Term: 8, LogTerm: 6, Index: 120},
		{Type: MsgPreVoteResp, To: 1, From: 2, Term: 8, Reject: true},
		{Type: MsgHeartbeat, To: 2, From: 1, Term: 7, Commit: 99, Context: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Type: MsgHeartbeatResp, To: 1, From: 2, Term: 7, Context: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Type: MsgSnap, To: 3, From: 1, Term: 7, Snapshot: SnapshotMeta{Index: 1000, Term: 6, Conf: ConfState{Voters: []uint64{1, 2, 3}}}},
		{Type: MsgSnapStatus, To: 1, From: 3, Reject: true},
		{Type: MsgUnreachable, To: 1, From: 3},
		{Type: MsgTransferLeader, To: 1, From: 2, Term: 7},
		{Type: MsgTimeoutNow, To: 2, From: 1, Term: 7},
		{Type: MsgReadIndex, To: 1, From: 2, Term: 7, Context: []byte("req-42")},
		{Type: MsgReadIndexResp, To: 2, From: 1, Term: 7, Index: 1001, Context: []byte("req-42")},
		{Type: MsgApp, To: math.MaxUint64, From: math.MaxUint64, Term: math.MaxUint64, LogTerm: math.MaxUint64,
			Index: math.MaxUint64, Commit: math.MaxUint64, RejectHint: math.MaxUint64, Reject: true,
			Snapshot: SnapshotMeta{Index: math.MaxUint64, Term: math.MaxUint64, Conf: ConfState{Voters: []uint64{math.MaxUint64}}}},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range codecSamples() {
		t.Run(m.Type.String(), func(t *testing.T) {
			b := MarshalMessage(m)
			if len(b) != encodedSize(m) {
				t.Fatalf("encoded %d bytes, encodedSize says %d", len(b), encodedSize(m))
			}
			got, err := UnmarshalMessage(b)
			if err != nil {
				t.Fatalf("UnmarshalMessage(%x): %v", b, err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip\n got %+v\nwant %+v", got, m)
			}
		})
	}
}

func TestUnmarshalMessageDoesNotAlias(t *testing.T) {
	m := Message{Type: MsgApp, Context: []byte("ctx"), Entries: []Entry{
		{Index: 1, Term: 1, Type: EntryNormal, Data: []byte("aa")},
		{Index: 2, Term: 1, Type: EntryNormal, Data: []byte("bb")},
	}}
	b := MarshalMessage(m)
	got, err := UnmarshalMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xee
	}
	_ = append(got.Entries[0].Data, 'X') // must not overwrite entry 1
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("decoded message changed with its input or a neighbour\n got %+v\nwant %+v", got, m)
	}
}

// TestMessageEmptySlicesDecodeAsNil documents the one normalisation: empty
// and nil slices share an encoding.
func TestMessageEmptySlicesDecodeAsNil(t *testing.T) {
	m := Message{Type: MsgApp, Context: []byte{}, Entries: []Entry{{Type: EntryNormal, Data: []byte{}}},
		Snapshot: SnapshotMeta{Conf: ConfState{Voters: []uint64{}}}}
	got, err := UnmarshalMessage(MarshalMessage(m))
	if err != nil {
		t.Fatal(err)
	}
	want := Message{Type: MsgApp, Entries: []Entry{{Type: EntryNormal}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestUnmarshalMessageCorrupt(t *testing.T) {
	valid := MarshalMessage(Message{Type: MsgApp, To: 2, From: 1, Term: 3,
		Entries: []Entry{{Index: 1, Term: 3, Type: EntryNormal, Data: []byte("abc")}}})
	// header: version, type, 7 one-byte uvarints, flags; then context length.
	const flagsOff, ctxLenOff, entCountOff = 9, 10, 11
	with := func(off int, v ...byte) []byte {
		b := append([]byte(nil), valid[:off]...)
		b = append(b, v...)
		return append(b, valid[off+1:]...)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version only", []byte{codecVersion}},
		{"unknown version", with(0, 1)},
		{"version zero", with(0, 0)},
		{"unknown type", with(1, 99)},
		{"type zero", with(1, 0)},
		{"unknown flag", with(flagsOff, 0x08)},
		{"context longer than input", with(ctxLenOff, 0x7f)},
		{"entry count larger than input", with(entCountOff, 0xff, 0xff, 0xff, 0xff, 0x0f)},
		{"entry count 2^63", with(entCountOff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01)},
		{"unknown entry type", with(entCountOff+3, 7)},
		{"entry data longer than input", with(entCountOff+4, 0x50)},
		{"non-minimal uvarint", with(2, 0x82, 0x00)},
		{"uvarint overflow", with(2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)},
		{"truncated uvarint", valid[:2]},
		{"voter count larger than input", append(append([]byte(nil), valid[:len(valid)-1]...), 0x10)},
		{"trailing byte", append(append([]byte(nil), valid...), 0)},
		{"truncated last byte", valid[:len(valid)-1]},
	}
	if _, err := UnmarshalMessage(valid); err != nil {
		t.Fatalf("base input does not decode: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := UnmarshalMessage(tt.in)
			if !errors.Is(err, ErrCorruptMessage) {
				t.Fatalf("UnmarshalMessage(%x) = %+v, %v; want ErrCorruptMessage", tt.in, m, err)
			}
		})
	}
	// Every strict prefix of a valid encoding is corrupt.
	for _, m := range codecSamples() {
		b := MarshalMessage(m)
		for n := range len(b) {
			if _, err := UnmarshalMessage(b[:n]); !errors.Is(err, ErrCorruptMessage) {
				t.Fatalf("%v: prefix %d/%d decoded, err %v", m.Type, n, len(b), err)
			}
		}
	}
}

// TestUnmarshalMessageBoundedAllocation checks that a tiny frame claiming a
// huge entry or voter count does not allocate for the claim.
func TestUnmarshalMessageBoundedAllocation(t *testing.T) {
	huge := []byte{codecVersion, byte(MsgApp), 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff, 0xff, 0xff, 0x0f} // 2^32-1 entries claimed in 16 bytes
	const runs = 100
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		if _, err := UnmarshalMessage(huge); !errors.Is(err, ErrCorruptMessage) {
			t.Fatalf("err = %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	// Only the error value may allocate: a few hundred bytes, not 2^32 entries.
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 1024 {
		t.Fatalf("%d bytes allocated per decode of a corrupt 16-byte frame", perRun)
	}
}

func FuzzUnmarshalMessage(f *testing.F) {
	for _, m := range codecSamples() {
		f.Add(MarshalMessage(m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptMessage) {
				t.Fatalf("error %v does not wrap ErrCorruptMessage", err)
			}
			return
		}
		// The encoding is canonical: what decodes re-encodes to the same bytes.
		again := MarshalMessage(m)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs\n in %x\nout %x", b, again)
		}
		n := len(m.Context) + len(m.Snapshot.Conf.Voters)
		for _, e := range m.Entries {
			n += len(e.Data) + 1
		}
		if n > len(b) {
			t.Fatalf("decoded %d payload bytes/elements from %d input bytes", n, len(b))
		}
	})
}

func benchMsgApp() Message {
	ents := make([]Entry, 64)
	for i := range ents {
		data := bytes.Repeat([]byte{byte(i)}, 256)
		ents[i] = Entry{Index: uint64(1000 + i), Term: 7, Type: EntryNormal, Data: data}
	}
	return Message{Type: MsgApp, To: 2, From: 1, Term: 7, LogTerm: 7, Index: 999, Commit: 990, Entries: ents}
}

func BenchmarkMarshalMessageApp64x256(b *testing.B) {
	m := benchMsgApp()
	b.SetBytes(int64(encodedSize(m)))
	b.ReportAllocs()
	for b.Loop() {
		_ = MarshalMessage(m)
	}
}

func BenchmarkUnmarshalMessageApp64x256(b *testing.B) {
	enc := MarshalMessage(benchMsgApp())
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalMessage(enc); err != nil {
			b.Fatal(err)
		}
	}
}
