package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/raftmq/raftmq/raftlog"
)

// castagnoli is the CRC32C table used for log entries.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// entryVersion is the first byte of every log entry value.
const entryVersion = 1

// Entry value layout (all integers big-endian):
//
//	version (1) | term (8) | type (1) | payload (n) | crc32c (4)
//
// The CRC covers the 8-byte index key followed by everything before the CRC,
// so an entry stored under the wrong key fails the check too.
const (
	entryHeaderBytes = 1 + 8 + 1
	entryCRCBytes    = 4
)

func indexKey(i uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], i)
	return k[:]
}

func entryCRC(key, body []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, body)
}

// encodeEntry returns the value stored for e under indexKey(e.Index).
func encodeEntry(e raftlog.Entry) []byte {
	v := make([]byte, entryHeaderBytes+len(e.Data)+entryCRCBytes)
	v[0] = entryVersion
	binary.BigEndian.PutUint64(v[1:9], e.Term)
	v[9] = byte(e.Type)
	copy(v[entryHeaderBytes:], e.Data)
	body := v[:len(v)-entryCRCBytes]
	binary.BigEndian.PutUint32(v[len(body):], entryCRC(indexKey(e.Index), body))
	return v
}

// decodeEntry checks v's CRC and decodes it. The returned Data is a copy:
// v may point into bbolt's memory map. An error describes what is wrong;
// the caller wraps it with ErrCorrupt, the file and the index.
func decodeEntry(index uint64, v []byte) (raftlog.Entry, error) {
	if len(v) < entryHeaderBytes+entryCRCBytes {
		return raftlog.Entry{}, fmt.Errorf("value is %d bytes, shorter than the %d-byte minimum", len(v), entryHeaderBytes+entryCRCBytes)
	}
	body := v[:len(v)-entryCRCBytes]
	want := binary.BigEndian.Uint32(v[len(body):])
	if got := entryCRC(indexKey(index), body); got != want {
		return raftlog.Entry{}, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	if v[0] != entryVersion {
		return raftlog.Entry{}, fmt.Errorf("unknown entry format version %d", v[0])
	}
	e := raftlog.Entry{
		Index: index,
		Term:  binary.BigEndian.Uint64(v[1:9]),
		Type:  raftlog.EntryType(v[9]),
	}
	if n := len(body) - entryHeaderBytes; n > 0 {
		e.Data = make([]byte, n)
		copy(e.Data, body[entryHeaderBytes:])
	}
	return e, nil
}

// entryTerm returns just the term of a stored entry, after the CRC check.
func entryTerm(index uint64, v []byte) (uint64, error) {
	e, err := decodeEntry(index, v)
	return e.Term, err
}
