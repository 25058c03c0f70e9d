package broker

import (
	"errors"
	"reflect"
	"runtime"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

const fuzzClusterID = "fuzz-cluster"

// maxFrameAllocBytes bounds one decodeFrame: raftlog.UnmarshalMessage checks
// every count against the remaining bytes, so allocation is a small multiple
// of the frame plus a fixed allowance (the fuzz worker's background work
// shares the counter).
func maxFrameAllocBytes(frameBytes int) uint64 { return uint64(16*frameBytes) + 1<<20 }

// seedFrames are valid frames of every wire message type.
func seedFrames() [][]byte {
	ents := []raftlog.Entry{
		{Index: 5, Term: 2, Type: raftlog.EntryNoop},
		{Index: 6, Term: 2, Type: raftlog.EntryNormal, Data: []byte("put t m")},
	}
	msgs := []raftlog.Message{
		{Type: raftlog.MsgApp, To: 2, From: 1, Term: 2, LogTerm: 1, Index: 4, Commit: 4, Entries: ents},
		{Type: raftlog.MsgAppResp, To: 1, From: 2, Term: 2, Index: 6},
		{Type: raftlog.MsgAppResp, To: 1, From: 2, Term: 2, Index: 9, Reject: true, RejectHint: 3, LogTerm: 1},
		{Type: raftlog.MsgVote, To: 3, From: 1, Term: 3, LogTerm: 2, Index: 6},
		{Type: raftlog.MsgVoteResp, To: 1, From: 3, Term: 3},
		{Type: raftlog.MsgPreVote, To: 3, From: 1, Term: 4, LogTerm: 2, Index: 6, Context: []byte("transfer")},
		{Type: raftlog.MsgPreVoteResp, To: 1, From: 3, Term: 4, Reject: true},
		{Type: raftlog.MsgHeartbeat, To: 2, From: 1, Term: 2, Commit: 6, Context: []byte{0, 0, 0, 0, 0, 0, 0, 9}},
		{Type: raftlog.MsgHeartbeatResp, To: 1, From: 2, Term: 2, Context: []byte{0, 0, 0, 0, 0, 0, 0, 9}},
		{Type: raftlog.MsgSnap, To: 2, From: 1, Term: 2, Snapshot: raftlog.SnapshotMeta{Index: 100, Term: 2, Conf: raftlog.ConfState{Voters: []uint64{1, 2, 3}}}},
		{Type: raftlog.MsgTimeoutNow, To: 2, From: 1, Term: 2},
		{Type: raftlog.MsgReadIndex, To: 1, From: 2, Term: 2, Context: []byte("r1")},
		{Type: raftlog.MsgReadIndexResp, To: 2, From: 1, Term: 2, Index: 6, Context: []byte("r1")},
	}
	var out [][]byte
	for _, m := range msgs {
		out = append(out, encodeFrame(fuzzClusterID, m.From, m))
	}
	return out
}

// FuzzDecodeFrame: decodeFrame never panics, allocates a bounded amount,
// reports every refusal as ErrBadFrame, and whatever it accepts is a wire
// (non-local) message whose re-encoding decodes to the same message.
func FuzzDecodeFrame(f *testing.F) {
	for _, b := range seedFrames() {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("RQ"))
	f.Add([]byte{'R', 'Q', 2, 0})
	f.Add(encodeFrame("other-cluster", 1, raftlog.Message{Type: raftlog.MsgHeartbeat, To: 2, From: 1, Term: 1}))
	f.Add(encodeFrame(fuzzClusterID, 1, raftlog.Message{Type: raftlog.MsgProp, To: 2, From: 1, Term: 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m, err := decodeFrame(fuzzClusterID, b)
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > maxFrameAllocBytes(len(b)) {
			t.Fatalf("decoding a %d-byte frame allocated %d bytes (limit %d)", len(b), got, maxFrameAllocBytes(len(b)))
		}
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("refusal %v does not wrap ErrBadFrame", err)
			}
			return
		}
		if m.Type.IsLocal() {
			t.Fatalf("accepted local message type %v", m.Type)
		}
		again, err := decodeFrame(fuzzClusterID, encodeFrame(fuzzClusterID, m.From, m))
		if err != nil {
			t.Fatalf("re-encoded accepted message %+v refused: %v", m, err)
		}
		if !reflect.DeepEqual(normalize(m), normalize(again)) {
			t.Fatalf("round trip changed the message:\n first %+v\nsecond %+v", m, again)
		}
		if _, err := decodeFrame("not-"+fuzzClusterID, b); err == nil {
			t.Fatalf("frame accepted by a node of another cluster")
		}
	})
}

// normalize maps empty slices to nil so DeepEqual compares content.
func normalize(m raftlog.Message) raftlog.Message {
	if len(m.Context) == 0 {
		m.Context = nil
	}
	if len(m.Entries) == 0 {
		m.Entries = nil
	}
	for i := range m.Entries {
		if len(m.Entries[i].Data) == 0 {
			m.Entries[i].Data = nil
		}
	}
	if len(m.Snapshot.Conf.Voters) == 0 {
		m.Snapshot.Conf.Voters = nil
	}
	return m
}
