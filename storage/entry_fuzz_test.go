package storage

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

// maxEntryAllocBytes bounds one decodeEntry: it copies the payload once,
// plus a fixed allowance (the fuzz worker's background work shares the
// counter).
func maxEntryAllocBytes(valueBytes int) uint64 { return uint64(4*valueBytes) + 1<<20 }

// withCRC returns v with its last 4 bytes replaced by the checksum a valid
// entry at index would carry, so the fuzzer reaches the checks behind the
// CRC (version, layout) instead of stopping at it almost always.
func withCRC(index uint64, v []byte) []byte {
	if len(v) < entryHeaderBytes+entryCRCBytes {
		return v
	}
	out := bytes.Clone(v)
	body := out[:len(out)-entryCRCBytes]
	binary.BigEndian.PutUint32(out[len(body):], entryCRC(indexKey(index), body))
	return out
}

// FuzzDecodeEntry: decodeEntry never panics, allocates a bounded amount,
// accepts a value only when its checksum matches its index, and whatever
// it accepts re-encodes to the same bytes, with Data not aliasing the input.
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range []raftlog.Entry{
		{Index: 1, Term: 1, Type: raftlog.EntryNoop},
		{Index: 2, Term: 1, Type: raftlog.EntryNormal, Data: EncodeCommand(Command{Op: OpCreateTopic, Topic: "t"})},
		{Index: 3, Term: 2, Type: raftlog.EntryNormal, Data: EncodeCommand(Command{Op: OpPut, Topic: "t", Message: "m", ClientID: "c", Seq: 1, ProposalID: 9})},
		{Index: 1 << 40, Term: 1 << 33, Type: raftlog.EntryNormal, Data: EncodeCommand(Command{Op: OpPop, Topic: "t", ClientID: "c", Seq: 2})},
	} {
		f.Add(e.Index, encodeEntry(e))
		f.Add(e.Index+1, encodeEntry(e)) // stored under the wrong key
	}
	f.Add(uint64(7), []byte{})
	f.Add(uint64(7), []byte{entryVersion, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, index uint64, v []byte) {
		for _, val := range [][]byte{v, withCRC(index, v)} {
			orig := bytes.Clone(val)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			e, err := decodeEntry(index, val)
			runtime.ReadMemStats(&after)
			if got := after.TotalAlloc - before.TotalAlloc; got > maxEntryAllocBytes(len(val)) {
				t.Fatalf("decoding a %d-byte value allocated %d bytes (limit %d)", len(val), got, maxEntryAllocBytes(len(val)))
			}
			if err != nil {
				continue
			}
			if e.Index != index {
				t.Fatalf("decoded index %d, stored under %d", e.Index, index)
			}
			if re := encodeEntry(e); !bytes.Equal(re, val) {
				t.Fatalf("accepted value does not re-encode to itself:\n in %x\nout %x", val, re)
			}
			if len(e.Data) > 0 {
				e.Data[0] ^= 0xff
				if !bytes.Equal(val, orig) {
					t.Fatalf("decoded Data aliases the stored value")
				}
			}
			if term, err := entryTerm(index, val); err != nil || term != e.Term {
				t.Fatalf("entryTerm = %d, %v; decodeEntry said term %d", term, err, e.Term)
			}
		}
	})
}
