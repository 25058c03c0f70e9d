package broker

import (
	"errors"
	"math"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

// TestDispatchRefusesInvalidMessages: the peer dispatcher drops every frame
// that breaks raftlog.ValidateMessage or ValidateSender, and a bare MsgSnap,
// before anything reaches the node loop; a good frame goes through.
func TestDispatchRefusesInvalidMessages(t *testing.T) {
	tr := &peerInbox{clusterID: "c", self: 2,
		recvCh: make(chan raftlog.Message, 16), chunkCh: make(chan snapChunk, 1), ackCh: make(chan snapAck, 1)}
	tr.setKnown(map[uint64]string{1: "", 3: ""}, nil)
	frame := func(from uint64, m raftlog.Message) []byte { return encodeFrame("c", from, m) }
	bad := map[string][]byte{
		"term 2^64-1 (issue 12)": frame(1, raftlog.Message{Type: raftlog.MsgHeartbeat, From: 1, To: 2, Term: math.MaxUint64}),
		"entry below its index (issue 12)": frame(1, raftlog.Message{Type: raftlog.MsgApp, From: 1, To: 2, Term: 3, Index: 32, LogTerm: 3, Commit: 32,
			Entries: []raftlog.Entry{{Index: 1, Term: 3, Type: raftlog.EntryNormal}}}),
		"no term":         frame(1, raftlog.Message{Type: raftlog.MsgApp, From: 1, To: 2}),
		"to another node": frame(1, raftlog.Message{Type: raftlog.MsgHeartbeat, From: 1, To: 3, Term: 3}),
		"bare MsgSnap": frame(1, raftlog.Message{Type: raftlog.MsgSnap, From: 1, To: 2, Term: 3,
			Snapshot: raftlog.SnapshotMeta{Index: 5, Term: 3, Conf: raftlog.ConfState{Voters: []uint64{1, 2, 3}}}}),
		"stranger": frame(9, raftlog.Message{Type: raftlog.MsgHeartbeat, From: 9, To: 2, Term: 3}),
	}
	for name, f := range bad {
		if err := tr.dispatch(f); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: dispatch returned %v, want ErrBadFrame", name, err)
		}
	}
	if len(tr.recvCh) != 0 {
		t.Fatalf("%d refused messages reached the node loop", len(tr.recvCh))
	}
	good := raftlog.Message{Type: raftlog.MsgHeartbeat, From: 3, To: 2, Term: 3, Commit: 7}
	if err := tr.dispatch(frame(3, good)); err != nil {
		t.Fatal(err)
	}
	if got := <-tr.recvCh; got.Term != 3 || got.From != 3 {
		t.Fatalf("got %+v", got)
	}
}
