package raftlog

// recovery is the state of a node started with Config.Recovering: it lost
// or damaged its data, so it may have forgotten its vote and entries it
// acknowledged. Until it holds everything the cluster had committed when
// it first heard from a leader, it must not vote (it could vote twice in a
// term, or for a candidate missing entries it once helped commit) nor lead
// (its log may lack committed entries).
type recovery struct {
	active bool
	// target is the leader's commit index learned from the first MsgApp or
	// MsgSnap accepted while recovering; valid when known.
	target uint64
	known  bool
}

// learnRecoveryTarget records the leader's commit index from the first
// MsgApp (after it is handled) whose commit index covers an entry of the
// leader's own term. Until a new leader commits an entry of its term, its
// commit index may lag what earlier leaders committed (Raft §5.4.2), so a
// target taken then could be too low; once our log holds the leader's term
// at that index (one leader per term: the entry is the leader's), the
// commit index includes everything committed before. Heartbeats carry a
// commit capped at our match, not the leader's, and never count.
func (c *Core) learnRecoveryTarget(m Message) {
	if !c.rec.active || c.rec.known || m.Type != MsgApp {
		return
	}
	if m.Commit > c.log.lastIndex() || c.log.termOrZero(m.Commit) != m.Term {
		return
	}
	c.rec.target, c.rec.known = m.Commit, true
	c.logger.Infof("raftlog: node %d recovering: catching up to leader %d's commit index %d (term %d)",
		c.id, m.From, c.rec.target, c.term)
}

// maybeEndRecovery ends recovering mode once the persisted commit index
// and persisted log reach the target. Called from Advance, when what the
// last Ready reported is durable.
func (c *Core) maybeEndRecovery() {
	if !c.rec.active || !c.rec.known {
		return
	}
	if min(c.prevHard.Commit, c.log.persistedLastIndex()) < c.rec.target {
		return
	}
	c.rec.active = false
	c.logger.Infof("raftlog: node %d recovered: commit %d reached target %d; it votes and may campaign again",
		c.id, c.prevHard.Commit, c.rec.target)
}

// Recovering reports whether the node is still in recovering mode.
func (c *Core) Recovering() bool { return c.rec.active }

// noticeAmnesia puts a node whose log is empty into recovering mode when a
// leader's message proves that the cluster has committed entries: a
// MsgApp or heartbeat with a commit index above zero, or a snapshot. Such
// a node may be one that lost its data directory (a power cut before the
// directory entry of raft.db was durable, an operator wiping it): it may
// have voted in this term and acknowledged entries it no longer holds, so
// it must neither vote nor campaign until it holds what the cluster
// committed (docs/decisions.md, 8 and 11). A node that is merely new (it
// joined late, or as a learner) is put in the same mode and leaves it as
// soon as it has caught up. Called before the message is handled, so the
// answer to it goes out in a Ready that reports the mode; the caller
// persists the mode before sending.
func (c *Core) noticeAmnesia(m Message) {
	if c.rec.active || c.log.lastIndex() > 0 {
		return
	}
	switch {
	case (m.Type == MsgApp || m.Type == MsgHeartbeat) && m.Commit > 0:
	case m.Type == MsgSnap && m.Snapshot.Index > 0:
	default:
		return
	}
	c.rec = recovery{active: true}
	c.logger.Warnf("raftlog: node %d has an empty log but leader %d's %v shows the cluster committed entries (commit %d, term %d): "+
		"this node may have lost its data; it recovers (no votes, no campaigns) until it has caught up",
		c.id, m.From, m.Type, max(m.Commit, m.Snapshot.Index), m.Term)
}
