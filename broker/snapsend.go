package broker

import (
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/snapshot"
)

// snapWindowChunks bounds the chunks in flight to one follower: the sender
// waits for acks before it sends more, so a transfer never fills the peer
// queues that heartbeats share.
const snapWindowChunks = 4

// snapTiming paces a transfer.
type snapTiming struct {
	resendAfter time.Duration // no ack progress this long: resend from the acked offset
	giveUpAfter time.Duration // no ack progress this long: report failure
}

// snapReport is a finished transfer, for ReportSnapshot.
type snapReport struct {
	peer   uint64
	sender *snapSender
	ok     bool
}

// snapSender streams one snapshot file to one follower in chunks, off the
// node loop. The node loop feeds it acks and reads its report.
type snapSender struct {
	peer  uint64
	msg   raftlog.Message // the core's MsgSnap, carrying the file's metadata
	meta  snapshot.Meta
	file  *sendFile
	ackCh chan snapAck
	stop  chan struct{}
}

// startSnapshotSend begins streaming a snapshot to the follower a MsgSnap
// names. The core names raft.db's snapshot (index X); any snapshot file at
// or after X serves, since state.db only holds committed entries: a
// transfer already running is kept, a file already written is reused, and
// otherwise the follower waits for a new file (startSendJob). The follower
// is then at the file's index, which the core takes from its answer.
func (n *node) startSnapshotSend(m raftlog.Message) {
	if s, ok := n.senders[m.To]; ok {
		if s.meta.Index >= m.Snapshot.Index {
			return
		}
		n.endSender(s)
	}
	if f := n.sendFile; f != nil && f.meta.Index >= m.Snapshot.Index {
		n.runSender(m, f)
		return
	}
	n.snapWanted[m.To] = m // maybeSnapshot starts the file
}

// runSender streams the file f to m.To.
func (n *node) runSender(m raftlog.Message, f *sendFile) {
	meta := f.meta
	m.Snapshot = meta.Raft()
	f.users++
	s := &snapSender{peer: m.To, msg: m, meta: meta, file: f, ackCh: make(chan snapAck, snapRecvQueue), stop: make(chan struct{})}
	n.senders[m.To] = s
	n.log.Info().Int("peer", nodeIndex(m.To)).Uint64("index", meta.Index).Int64("bytes", meta.Size).Msg("sending snapshot")
	n.snapWG.Add(1)
	go func() {
		defer n.snapWG.Done()
		ok := s.run(n.store, n.trans, n.clusterID, n.self, n.chunkBytes, n.snapTiming, n.log)
		select {
		case n.snapReportCh <- snapReport{peer: s.peer, sender: s, ok: ok}:
		case <-s.stop:
		}
	}()
}

// endSender stops a transfer and lets go of its file.
func (n *node) endSender(s *snapSender) {
	close(s.stop)
	delete(n.senders, s.peer)
	s.file.users--
	n.releaseSendFile(s.file)
}

// snapshotReported hands a finished transfer's outcome to the core.
func (n *node) snapshotReported(r snapReport) {
	if n.senders[r.peer] != r.sender {
		return // replaced meanwhile
	}
	delete(n.senders, r.peer)
	r.sender.file.users--
	n.releaseSendFile(r.sender.file)
	n.log.Info().Int("peer", nodeIndex(r.peer)).Bool("ok", r.ok).Uint64("index", r.sender.meta.Index).Msg("snapshot transfer finished")
	n.core.ReportSnapshot(r.peer, r.ok)
}

// routeAck passes a follower's ack to the transfer it belongs to.
func (n *node) routeAck(a snapAck) {
	s, ok := n.senders[a.from]
	if !ok || !a.matches(s.meta) {
		return
	}
	select {
	case s.ackCh <- a:
	default: // the sender is behind; a later ack says as much
	}
}

// stopSenders ends every transfer and forgets the followers waiting for a
// snapshot file (leadership lost, or stopping).
func (n *node) stopSenders() {
	for _, s := range n.senders {
		n.endSender(s)
	}
	clear(n.snapWanted)
}

// run streams the file and reports whether the follower has all of it,
// verified. Flow control: at most snapWindowChunks chunks past the last
// acked offset; a gap ack or a silence of resendAfter resends from the
// acked offset (go-back-N), so a lost chunk costs a window, not the
// transfer; a follower that restarted says offset 0 and gets it all again.
func (s *snapSender) run(store *snapshot.Store, trans transport, clusterID string, self uint64, chunkBytes int, tm snapTiming, log zerolog.Logger) bool {
	var acked, next int64
	lastProgress, lastRewind := time.Now(), time.Time{}
	tick := time.NewTicker(max(tm.resendAfter/4, time.Millisecond))
	defer tick.Stop()
	window := int64(snapWindowChunks) * int64(chunkBytes)
	for {
		for next < s.meta.Size && next-acked < window {
			data, err := store.ReadChunk(s.meta, next, chunkBytes)
			if err != nil {
				if !errors.Is(err, snapshot.ErrNotFound) {
					log.Warn().Err(err).Int("peer", nodeIndex(s.peer)).Msg("read snapshot chunk")
				}
				return false // a newer snapshot replaced it: the core will offer that one
			}
			frame := encodeSnapChunk(clusterID, self, snapChunk{to: s.peer, msg: s.msg, meta: s.meta, offset: next, data: data})
			if !trans.SendFrame(s.peer, frame) {
				break // queue full: retry on the next tick
			}
			next += int64(len(data))
		}
		select {
		case <-s.stop:
			return false
		case a := <-s.ackCh:
			switch a.status {
			case ackDone:
				return true
			case ackFailed:
				return false
			}
			now := time.Now()
			switch {
			case a.offset > acked:
				acked, lastProgress = a.offset, now
				next = max(next, acked)
			case a.offset < acked:
				// The follower lost what it had (it restarted): start over there.
				acked, next, lastProgress = a.offset, a.offset, now
			case next > acked && now.Sub(lastRewind) > tm.resendAfter/4:
				// No progress while chunks are in flight: a gap. Resend.
				next, lastRewind = acked, now
			}
		case <-tick.C:
			idle := time.Since(lastProgress)
			if idle > tm.giveUpAfter {
				log.Warn().Int("peer", nodeIndex(s.peer)).Int64("offset", acked).Dur("idle", idle).Msg("snapshot transfer stalled; giving up")
				return false
			}
			if idle > tm.resendAfter && time.Since(lastRewind) > tm.resendAfter {
				next, lastRewind = acked, time.Now()
				if acked == s.meta.Size {
					next = max(0, acked-1) // all sent: poke the follower for its final answer
				}
			}
		}
	}
}
