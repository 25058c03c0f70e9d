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
// leader message carrying it. A heartbeat does not: its commit is capped
// at the leader's view of our match, not the leader's commit index.
func (c *Core) learnRecoveryTarget(m Message) {
	if !c.rec.active || c.rec.known {
		return
	}
	switch m.Type {
	case MsgApp:
		c.rec.target = m.Commit
	case MsgSnap:
		c.rec.target = max(m.Commit, m.Snapshot.Index)
	default:
		return
	}
	c.rec.known = true
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
