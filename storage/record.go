package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/raftmq/raftmq/raftlog"
	"go.etcd.io/bbolt"
)

// Small records (hard state, membership, counters, sessions) are sealed:
// value = payload | crc32c(key | payload), so bit rot in them is detected
// like bit rot in log entries.

func putSealed(b *bbolt.Bucket, key string, payload []byte) error {
	return putSealedKey(b, []byte(key), payload)
}

func putSealedKey(b *bbolt.Bucket, key, payload []byte) error {
	v := make([]byte, len(payload)+entryCRCBytes)
	copy(v, payload)
	binary.BigEndian.PutUint32(v[len(payload):], entryCRC(key, payload))
	return b.Put(key, v)
}

// getSealed returns a copy of the payload stored under key, ok=false if the
// key is absent, or an error (to be wrapped with ErrCorrupt) if its CRC fails.
func getSealed(b *bbolt.Bucket, key string) (payload []byte, ok bool, err error) {
	return getSealedKey(b, []byte(key))
}

func getSealedKey(b *bbolt.Bucket, key []byte) (payload []byte, ok bool, err error) {
	v := b.Get(key)
	if v == nil {
		return nil, false, nil
	}
	payload, err = unseal(key, v)
	return payload, true, err
}

// unseal checks a sealed value and returns a copy of its payload.
func unseal(key, v []byte) ([]byte, error) {
	if len(v) < entryCRCBytes {
		return nil, fmt.Errorf("record %q is %d bytes, too short for its checksum", key, len(v))
	}
	body := v[:len(v)-entryCRCBytes]
	if got, want := entryCRC(key, body), binary.BigEndian.Uint32(v[len(body):]); got != want {
		return nil, fmt.Errorf("record %q: checksum mismatch (stored %08x, computed %08x)", key, want, got)
	}
	return append([]byte(nil), body...), nil
}

// reader is a bounds-checked big-endian decoder; the first failure sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("truncated or malformed %s", what)
	}
}

func (r *reader) u64(what string) uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte1(what string) byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// bytesN returns the next n bytes (a sub-slice, not a copy). It never
// allocates: n is checked against what is left first.
func (r *reader) bytesN(n uint64, what string) []byte {
	if r.err != nil || uint64(len(r.b)) < n {
		r.fail(what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) done(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes after %s", len(r.b), what)
	}
	return r.err
}

func putU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func encodeHardState(hs raftlog.HardState) []byte {
	b := make([]byte, 0, 24)
	return putU64(putU64(putU64(b, hs.Term), hs.Vote), hs.Commit)
}

func decodeHardState(b []byte) (raftlog.HardState, error) {
	r := reader{b: b}
	hs := raftlog.HardState{Term: r.u64("term"), Vote: r.u64("vote"), Commit: r.u64("commit")}
	return hs, r.done("hard state")
}

// maxVoters bounds a decoded membership (raftmq clusters have 1-7 nodes).
const maxVoters = 1024

// appendConfState writes the voters, then the learners only if there are
// any, so that a membership without learners has the layout it had before
// learners existed.
func appendConfState(b []byte, cs raftlog.ConfState) []byte {
	b = binary.AppendUvarint(b, uint64(len(cs.Voters)))
	for _, v := range cs.Voters {
		b = putU64(b, v)
	}
	if len(cs.Learners) > 0 {
		b = binary.AppendUvarint(b, uint64(len(cs.Learners)))
		for _, v := range cs.Learners {
			b = putU64(b, v)
		}
	}
	return b
}

// readConfState reads what appendConfState wrote; the learners are read
// when bytes remain (a conf record) and must be last in their record.
func readConfState(r *reader) raftlog.ConfState {
	var cs raftlog.ConfState
	cs.Voters = readIDs(r, "voter")
	if r.err == nil && len(r.b) > 0 {
		cs.Learners = readIDs(r, "learner")
	}
	return cs
}

func readIDs(r *reader, what string) []uint64 {
	n := r.uvarint(what + " count")
	if n > maxVoters {
		r.fail(fmt.Sprintf("%s count %d", what, n))
		return nil
	}
	var ids []uint64
	for i := uint64(0); i < n && r.err == nil; i++ {
		ids = append(ids, r.u64(what))
	}
	return ids
}

func encodeSnapshotMeta(m raftlog.SnapshotMeta) []byte {
	return appendConfState(putU64(putU64(nil, m.Index), m.Term), m.Conf)
}

func decodeSnapshotMeta(b []byte) (raftlog.SnapshotMeta, error) {
	r := reader{b: b}
	m := raftlog.SnapshotMeta{Index: r.u64("index"), Term: r.u64("term")}
	m.Conf = readConfState(&r)
	return m, r.done("snapshot meta")
}

func cloneConf(cs raftlog.ConfState) raftlog.ConfState {
	if cs.IsEmpty() {
		return raftlog.ConfState{}
	}
	return cs.Clone()
}

func beU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// appendString appends a uvarint length and s.
func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
