package broker

import (
	"github.com/raftmq/raftmq/raftlog"
)

// step passes a peer message to the core, guarding against a peer whose
// data directory was wiped (it rejoins with an empty log under the same id,
// which Raft's model does not allow for):
//
//   - a follower with an empty log may get a heartbeat whose commit index is
//     beyond its last entry (the leader still believes what the node acked
//     before it lost its data); the commit is capped at the last index, which
//     is always safe: a lower commit index only delays applying;
//   - a leader whose follower rejects appends with a log shorter than what
//     it acknowledged before cannot back off below that acknowledgement; the
//     broker sends such a follower the newest snapshot directly, after which
//     the follower's answers move the core's progress again.
func (n *node) step(m raftlog.Message) {
	if m.Type == raftlog.MsgHeartbeat {
		if last := n.core.Status().LastIndex; m.Commit > last {
			m.Commit = last
		}
	}
	if err := n.core.Step(m); err != nil {
		n.log.Debug().Err(err).Stringer("type", m.Type).Uint64("from", m.From).Msg("step")
		return
	}
	if m.Type == raftlog.MsgAppResp && m.Reject && n.core.Role() == raftlog.RoleLeader {
		n.maybeRescue(m)
	}
}

// maybeRescue sends the newest snapshot to a follower that lost entries it
// had acknowledged (RejectHint is its last index + 1).
func (n *node) maybeRescue(m raftlog.Message) {
	st := n.core.Status()
	pr, ok := st.Progress[m.From]
	if !ok || m.RejectHint > pr.Match || n.senders[m.From] != nil {
		return
	}
	snap, err := n.raft.Snapshot()
	if err != nil || snap.Index < pr.Match || snap.Index == 0 {
		// A snapshot at or beyond what it had acknowledged is needed, so
		// that the core's view of it holds again once it is installed.
		if n.job == nil {
			n.log.Warn().Uint64("peer", m.From).Uint64("acked", pr.Match).Uint64("has", m.RejectHint-1).
				Msg("peer lost log entries it had acknowledged (data directory wiped?); taking a snapshot to send it")
		}
		n.forceSnapshot = true
		return
	}
	n.log.Warn().Uint64("peer", m.From).Uint64("acked", pr.Match).Uint64("has", m.RejectHint-1).Uint64("snapshot_index", snap.Index).
		Msg("peer lost log entries it had acknowledged (data directory wiped?); sending it a snapshot")
	n.startSnapshotSend(raftlog.Message{Type: raftlog.MsgSnap, To: m.From, From: n.self, Term: st.Term, Snapshot: snap})
}
