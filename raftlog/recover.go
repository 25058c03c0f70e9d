package raftlog

import "slices"

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
	// demoted: a leader made this voter a learner while it recovered
	// (ConfDemote); it asks to be promoted back (Message.Demoted) and
	// reports itself recovering until it is a voter again, in a log it
	// has persisted (docs/decisions.md, 25).
	demoted bool
}

// recovering reports whether the node reports itself recovering: catching
// up, or a demoted voter waiting to be promoted back.
func (r recovery) recovering() bool { return r.active || r.demoted }

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
	if c.rec.demoted && c.isVoter(c.id) && c.log.persistedLastIndex() >= c.mem.lastIndex() {
		// Promoted back (or the demotion was overwritten), durably.
		c.rec.demoted = false
		c.logger.Infof("raftlog: node %d is a voter again after its demotion", c.id)
	}
	if !c.rec.active || !c.rec.known {
		return
	}
	if min(c.prevHard.Commit, c.log.persistedLastIndex()) < c.rec.target {
		return
	}
	c.rec.active = false
	c.logger.Infof("raftlog: node %d recovered: commit %d reached target %d; it votes and may campaign again",
		c.id, c.prevHard.Commit, c.rec.target)
	if c.lead != None {
		// Tell the leader now (its last answer said recovering), so that
		// it may promote this node without waiting for a heartbeat. What
		// is committed matches the leader's log.
		c.send(Message{Type: MsgAppResp, To: c.lead, Index: c.log.committed})
	}
}

// Recovering reports whether the node is still in recovering mode: it
// has not caught up, or it was demoted to learner meanwhile and is not yet
// a voter again.
func (c *Core) Recovering() bool { return c.rec.recovering() }

// noteDemoted takes note of a membership, just put in force, that makes
// this node a learner when it was a voter: only a demotion does that (or
// an overwritten promotion, whose leader meant it to vote). The node
// reports itself recovering until it is a voter again, so that the caller
// keeps its persisted flag and a restart still asks the leader to promote
// it back. It may learn it from the ConfDemote entry or from a snapshot
// that holds it.
func (c *Core) noteDemoted(wasVoter bool) {
	if !wasVoter || c.rec.demoted || !slices.Contains(c.learners, c.id) {
		return
	}
	c.rec.demoted = true
	c.logger.Infof("raftlog: node %d is demoted to learner while it recovers; the leader promotes it back once it has caught up", c.id)
}

// stampRecovery marks a follower's answers to its leader with its
// recovery state (Message.Recovering, Message.Demoted).
func (c *Core) stampRecovery(m *Message) {
	if m.Type != MsgAppResp && m.Type != MsgHeartbeatResp {
		return
	}
	m.Recovering = c.rec.active
	m.Demoted = c.rec.demoted && !c.isVoter(c.id)
}

// noteRecoveryReport records a follower's recovery state from its answer.
func (pr *progress) noteRecoveryReport(m Message) {
	pr.recovering, pr.demoted = m.Recovering, m.Demoted
}

// maybeRepairRecovering is the leader's side of recovering as a learner
// (docs/decisions.md, 25), one change at a time and only when no change
// is pending:
//   - a voter that reports it is recovering is demoted to learner, so that
//     the other voters can elect and commit without the vote it cannot
//     give (a two-voter cluster with a recovering member could otherwise
//     never elect again once its leader is lost). Only if the other voters
//     that answered within the last two heartbeat intervals (fresher than
//     CheckQuorum's election timeout: a voter that just went down must not
//     count) are a quorum of the configuration without it: a recovering
//     voter still helps commit, and demoting it when another voter is down
//     would stop the cluster.
//   - a learner that reports it was demoted is promoted back once it no
//     longer reports recovering (promoted earlier, it would be demoted
//     again), its log holds our commit index, and the usual promotion
//     rule holds.
func (c *Core) maybeRepairRecovering() {
	if c.role != RoleLeader || c.pendingConfIndex > c.log.committed || c.leadTransferee != None {
		return
	}
	for _, id := range c.peers() {
		pr := c.prs[id]
		var cc ConfChange
		switch {
		case pr.recovering && c.isVoter(id):
			rest := majority(slices.DeleteFunc(slices.Clone(c.voters), func(v uint64) bool { return v == id }))
			if !rest.agree(func(v uint64) bool { return v == c.id || c.prs[v].idleTicks <= 2*c.heartbeatTicks }) {
				continue
			}
			cc = ConfChange{Type: ConfDemote, ID: id}
		case pr.demoted && !pr.recovering && !c.isVoter(id) && pr.match >= c.log.committed:
			cc = ConfChange{Type: ConfPromote, ID: id}
		default:
			continue
		}
		after, err := c.mem.current().Apply(cc)
		if err != nil {
			continue
		}
		cc.After = after
		if err := c.propose([]Entry{{Type: EntryConfChange, Data: cc.Marshal()}}); err != nil {
			c.logger.Debugf("raftlog: leader %d does not %v recovering node %d yet: %v", c.id, cc.Type, id, err)
			continue
		}
		c.logger.Infof("raftlog: leader %d proposes to %v node %d: it reports it is recovering (match %d, commit %d)",
			c.id, cc.Type, id, pr.match, c.log.committed)
		return
	}
}

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
