package broker

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/metrics"
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
	curveConnsRefused  atomic.Uint64 // connections refused by CURVE, both ports

	leaderChanges  atomic.Uint64 // times a Ready's SoftState named a new leader (or none)
	appendsDropped atomic.Uint64 // MsgApps not stepped: the disk guard is tripped
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
		Applied:            n.applied,
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
		AnonBytes:          recentAnonRSSBytes(time.Now()),
		Waiting:            n.waiters.len(),

		PeerFramesRefused:  n.stats.peerFramesRefused.Load(),
		PeerConnsRefused:   n.stats.peerConnsRefused.Load(),
		ClientConnsRefused: n.stats.clientConnsRefused.Load(),
		CurveConnsRefused:  n.stats.curveConnsRefused.Load(),
		StateCommits:       n.state.Commits(),
		DurableApplied:     n.applier.durable.Load(),
		CPUMicros:          processCPUMicros(),
		LeaderChanges:      n.stats.leaderChanges.Load(),
		AppendsDropped:     n.stats.appendsDropped.Load(),
	}
	if n.job != nil {
		ws.SnapshotBytes = n.job.written.Load()
	}
	ws.Ready, ws.NotReady = readiness(st, ws.Applied)
	if st.Role == raftlog.RoleLeader {
		ws.PeerLag = make(map[string]uint64, len(st.Progress)-1)
		for id, pr := range st.Progress {
			if id != n.self {
				ws.PeerLag[metrics.PeerLabel(nodeIndex(id))] = st.LastIndex - min(pr.Match, st.LastIndex)
			}
		}
	}
	n.disk.fill(&ws)
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

// readiness is /readyz's answer from a node's status: the node knows a
// leader that holds a quorum (raftlog's LeaderActive), is not recovering,
// and has applied everything it knows committed.
func readiness(st raftlog.Status, applied uint64) (bool, string) {
	switch {
	case st.Recovering:
		return false, "recovering: catching up from the leader after losing its data"
	case st.Role == raftlog.RoleLeader && !st.LeaderActive:
		return false, "leader without a quorum: not heard from a majority within an election timeout"
	case st.Lead == raftlog.None:
		return false, "no leader known"
	case !st.LeaderActive:
		return false, "the leader was not heard from within an election timeout"
	case applied < st.Commit:
		return false, fmt.Sprintf("applied index %d is behind commit index %d", applied, st.Commit)
	}
	return true, ""
}

// statusBox holds the latest published status.
type statusBox = atomic.Pointer[wire.Status]
