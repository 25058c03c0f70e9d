package broker

import (
	"sync/atomic"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/raftlog"
)

// stats are counters the node loop updates and status readers load.
type stats struct {
	logSyncs   atomic.Uint64 // raft.db write transactions (each one fsync)
	logEntries atomic.Uint64 // entries persisted to raft.db
	proposed   atomic.Uint64 // client commands proposed by this node
	refused    atomic.Uint64 // course requests refused and answered {"success":false}

	snapshotsStarted   atomic.Uint64 // snapshots begun on this node
	snapshotsTaken     atomic.Uint64 // snapshots recorded in raft.db
	snapshotsInstalled atomic.Uint64 // snapshots received from a leader and installed
	raftRebuilds       atomic.Uint64 // raft.db rewritten compactly
	stateRebuilds      atomic.Uint64 // state.db swapped for a compact copy

	peerFramesRefused  atomic.Uint64 // peer frames dropped as invalid
	peerConnsRefused   atomic.Uint64 // peer-port connections cut: over the limit
	clientConnsRefused atomic.Uint64 // client-port connections cut: over the limit
}

// statusChanged reports whether what status shows of roles and snapshots
// changed since the last publish. Counters and indexes are refreshed every
// tick; this catches what a caller waits for right after it happens (a new
// leader, a snapshot taken or installed).
func (n *node) statusChanged() bool {
	p := n.status.Load()
	if p == nil {
		return true
	}
	lead := -1
	if l := n.core.Lead(); l != raftlog.None {
		lead = nodeIndex(l)
	}
	prevLead := -1
	if p.LeaderID != nil {
		prevLead = *p.LeaderID
	}
	return p.Role != n.core.Role().String() || lead != prevLead || p.Snapshot != n.snapIndex
}

// publishStatus stores a fresh status for the client server, which answers
// GET status without ever waiting on the node loop. The node loop calls it
// once per tick, and when statusChanged.
func (n *node) publishStatus() {
	st := n.core.Status()
	ws := wire.Status{
		Role:               st.Role.String(),
		Term:               st.Term,
		ID:                 nodeIndex(n.self),
		Commit:             st.Commit,
		Applied:            n.state.AppliedIndex(),
		LastIndex:          st.LastIndex,
		Address:            n.clientAddrs[n.self],
		LogSyncs:           n.stats.logSyncs.Load(),
		LogEntries:         n.stats.logEntries.Load(),
		Refused:            n.stats.refused.Load(),
		Snapshot:           n.snapIndex,
		Recovering:         st.Recovering,
		SnapshotInProgress: n.job != nil,
		SnapshotSends:      len(n.senders),
		HeapBytes:          heapBytes(),
		AnonBytes:          anonRSSBytes(),

		PeerFramesRefused:  n.stats.peerFramesRefused.Load(),
		PeerConnsRefused:   n.stats.peerConnsRefused.Load(),
		ClientConnsRefused: n.stats.clientConnsRefused.Load(),
		StateCommits:       n.state.Commits(),
		DurableApplied:     n.state.DurableAppliedIndex(),
		CPUMicros:          processCPUMicros(),
	}
	if n.job != nil {
		ws.SnapshotBytes = n.job.written.Load()
	}
	if first, err := n.raft.FirstIndex(); err == nil {
		ws.FirstIndex = first
	}
	if st.Lead != raftlog.None {
		lead := nodeIndex(st.Lead)
		ws.LeaderID = &lead
		ws.Leader = n.clientAddrs[st.Lead]
	}
	n.status.Store(&ws)
}

// statusBox holds the latest published status.
type statusBox = atomic.Pointer[wire.Status]
