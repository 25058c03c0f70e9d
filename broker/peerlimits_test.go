package broker

import (
	"math"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/snapshot"
	"github.com/raftmq/raftmq/storage"
)

// TestLargestPeerFramesFitTheLimit: the largest frames a correct node sends
// with the default configuration, at the largest terms and indexes, fit the
// peer socket's ZMQ_MAXMSGSIZE: a MsgApp filled with tiny entries up to
// max_batch_bytes (counting the per-entry overhead, as the core does), a
// MsgApp of one maximal command, and a maximal snapshot chunk.
func TestLargestPeerFramesFitTheLimit(t *testing.T) {
	cfg := config.Default()
	cfg.Cluster.Addresses = append(cfg.Cluster.Addresses, cfg.Cluster.Addresses[0], cfg.Cluster.Addresses[0])
	limit := maxPeerFrameBytes(cfg.MaxBatchBytes, cfg.MaxMessageBytes+requestOverheadBytes, cfg.SnapshotChunkBytes)
	clusterID := strings.Repeat("c", maxClusterIDBytes)
	big := raftlog.MaxIndex - 1<<20
	app := func(ents []raftlog.Entry) raftlog.Message {
		return raftlog.Message{Type: raftlog.MsgApp, From: 1, To: 2, Term: raftlog.MaxTerm, Index: big, LogTerm: raftlog.MaxTerm,
			Commit: raftlog.MaxIndex, Entries: ents}
	}

	var tiny []raftlog.Entry
	for size := uint64(0); ; {
		e := raftlog.Entry{Index: big + 1 + uint64(len(tiny)), Term: raftlog.MaxTerm, Type: raftlog.EntryNormal, Data: []byte{1}}
		if size += uint64(len(e.Data)) + raftlog.EntryOverheadBytes; size > cfg.MaxBatchBytes {
			break
		}
		tiny = append(tiny, e)
	}
	cmd := storage.EncodeCommand(storage.Command{Op: storage.OpPut, Topic: strings.Repeat("t", config.MaxTopicBytesLimit),
		Message: strings.Repeat("m", cfg.MaxMessageBytes), ClientID: strings.Repeat("i", 256), Seq: math.MaxUint64, ProposalID: math.MaxUint64})
	one := []raftlog.Entry{{Index: big + 1, Term: raftlog.MaxTerm, Type: raftlog.EntryNormal, Data: cmd}}

	chunk := encodeSnapChunk(clusterID, 1, snapChunk{to: 2,
		msg:  raftlog.Message{Type: raftlog.MsgSnap, From: 1, To: 2, Term: raftlog.MaxTerm, Snapshot: raftlog.SnapshotMeta{Index: big, Term: raftlog.MaxTerm, Conf: raftlog.ConfState{Voters: []uint64{1, 2, 3}}}},
		meta: snapshot.Meta{ClusterID: clusterID, Index: big, Term: raftlog.MaxTerm, Voters: []uint64{1, 2, 3}, Size: snapshot.MaxBodyBytes, CRC: math.MaxUint32},
		data: make([]byte, cfg.SnapshotChunkBytes)})

	for name, frame := range map[string][]byte{
		"MsgApp of tiny entries": encodeFrame(clusterID, 1, app(tiny)),
		"MsgApp of one command":  encodeFrame(clusterID, 1, app(one)),
		"snapshot chunk":         chunk,
	} {
		if int64(len(frame)) > limit {
			t.Errorf("%s: %d bytes, over the peer frame limit %d", name, len(frame), limit)
		}
	}
	if uint64(limit) > cfg.MaxBatchBytes+(64<<10) {
		t.Errorf("limit %d is not just above max_batch_bytes %d", limit, cfg.MaxBatchBytes)
	}
}
