package raftlog

import (
	"errors"
	"fmt"
	"slices"
)

// loadConf rebuilds the membership in force at start: that of the newest
// change entry in the log, or the stored membership if there is none.
func (c *Core) loadConf() error {
	first, last := c.log.firstIndex(), c.log.lastIndex()
	// The stored membership is as of the snapshot or later (the caller
	// records it as it applies): its change is at or below first-1 at
	// least.
	c.mem.baseIndex = first - 1
	for lo := first; lo <= last; {
		ents, err := c.log.slice(lo, last+1, 1<<24)
		if err != nil {
			return fmt.Errorf("raftlog: read log [%d, %d] for membership: %w", lo, last, err)
		}
		if len(ents) == 0 {
			break
		}
		for _, e := range ents {
			if e.Type != EntryConfChange {
				continue
			}
			cc, err := UnmarshalConfChange(e.Data)
			if err != nil {
				return fmt.Errorf("raftlog: entry %d: %w: %w", e.Index, err, ErrBadConfig)
			}
			c.mem.log = append(c.mem.log, confAt{index: e.Index, term: e.Term, conf: cc.After.Clone()})
		}
		lo = ents[len(ents)-1].Index + 1
	}
	c.mem.compact(c.log.committed)
	c.setConf()
	return nil
}

// noteConfEntries takes note of the change entries among ents, which the
// log now holds, after dropping those that a conflicting append overwrote:
// a change takes effect when appended, and is undone if overwritten.
func (c *Core) noteConfEntries(ents []Entry) {
	before := c.mem.current()
	for n := len(c.mem.log); n > 0; n-- {
		last := c.mem.log[n-1]
		// A compacted entry was committed: it stays.
		if t, err := c.log.term(last.index); errors.Is(err, ErrCompacted) || err == nil && t == last.term {
			break
		}
		c.logger.Infof("raftlog: node %d: change entry %d/%d was overwritten; its membership is undone", c.id, last.index, last.term)
		c.mem.log = c.mem.log[:n-1]
	}
	for _, e := range ents {
		if e.Type != EntryConfChange || e.Index <= max(c.mem.lastIndex(), c.mem.baseIndex) {
			continue
		}
		cc, err := UnmarshalConfChange(e.Data)
		if err != nil {
			// ValidateMessage and ProposeConfChange let none through.
			c.logger.Warnf("raftlog: node %d ignores change entry %d: %v", c.id, e.Index, err)
			continue
		}
		c.mem.log = append(c.mem.log, confAt{index: e.Index, term: e.Term, conf: cc.After.Clone()})
		c.logger.Infof("raftlog: node %d appends change %d/%d: %v %d", c.id, e.Index, e.Term, cc.Type, cc.ID)
	}
	if !c.mem.current().Equal(before) {
		c.setConf()
	}
}

// restoreConf takes the membership of an installed snapshot.
func (c *Core) restoreConf(s SnapshotMeta) {
	if s.Conf.IsEmpty() {
		c.mem.log = nil
		c.mem.baseIndex = s.Index
		return
	}
	c.mem = membership{base: s.Conf.Clone(), baseIndex: s.Index}
	c.setConf()
}

// setConf makes the current membership the one in force: the quorum sets,
// and on a leader the progress of each member.
func (c *Core) setConf() {
	cs := c.mem.current().Clone()
	wasVoter := c.isVoter(c.id)
	c.voters = majority(cs.Voters)
	c.learners = cs.Learners
	c.noteDemoted(wasVoter)
	if c.role != RoleLeader {
		return
	}
	keep := append(c.peers(), c.id)
	for id := range c.prs {
		if !slices.Contains(keep, id) {
			delete(c.prs, id)
		}
	}
	for _, id := range keep {
		if c.prs[id] == nil {
			// It probes from our last index and backs off with its hint.
			c.prs[id] = newProgress(c.log.lastIndex()+1, c.maxInflightMsgs)
		}
	}
	if c.leadTransferee != None && !c.isVoter(c.leadTransferee) {
		c.abortLeaderTransfer()
	}
	// A smaller quorum may commit at once.
	if c.maybeCommit() {
		c.onCommit()
	}
}

// ProposeConfChange proposes one membership change (leader only). It is
// refused (an error wrapping ErrBadConfChange) when it does not make sense
// in the current membership, while an earlier change is not yet committed,
// or, for a promotion, while the learner's match index is more than
// Config.MaxPromoteLag behind the leader's last index. Other refusals wrap
// ErrProposalDropped, as for Propose.
func (c *Core) ProposeConfChange(cc ConfChange) error {
	if c.role != RoleLeader {
		return fmt.Errorf("not the leader: %w", ErrProposalDropped)
	}
	if len(cc.Context) > maxConfContextBytes {
		return fmt.Errorf("%w: context of %d bytes, at most %d", ErrBadConfChange, len(cc.Context), maxConfContextBytes)
	}
	after, err := c.mem.current().Apply(cc)
	if err != nil {
		return err
	}
	cc.After = after
	return c.Step(Message{Type: MsgProp, From: c.id, Entries: []Entry{{Type: EntryConfChange, Data: cc.Marshal()}}})
}

// checkConfProposal is the leader's admission of a change entry.
func (c *Core) checkConfProposal(e Entry) error {
	cc, err := UnmarshalConfChange(e.Data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfChange, err)
	}
	if !sabotageConcurrentChanges && c.pendingConfIndex > c.log.committed {
		return fmt.Errorf("%w: %v %d: the change or entries at or below %d are not committed yet (commit %d)",
			ErrBadConfChange, cc.Type, cc.ID, c.pendingConfIndex, c.log.committed)
	}
	if after, err := c.mem.current().Apply(cc); err != nil {
		return err
	} else if !after.Equal(cc.After) {
		return fmt.Errorf("%w: %v %d: proposed for membership %v, now %v", ErrBadConfChange, cc.Type, cc.ID, cc.After, after)
	}
	if cc.Type == ConfPromote {
		// It must hold the membership in force (the newest change entry),
		// so that it knows it votes and whose votes count, and be close
		// to our last index, so that it adds little delay to commits.
		var match uint64
		if pr := c.prs[cc.ID]; pr != nil {
			match = pr.match
			if pr.recovering {
				// It would not vote yet, and the leader would demote it
				// again at once (decision 25).
				return fmt.Errorf("%w: promote %d: it reports it is still recovering (it joined empty or lost data and has not caught up); retry once it has",
					ErrBadConfChange, cc.ID)
			}
		}
		newest := max(c.mem.baseIndex, c.mem.lastIndex())
		if last := c.log.lastIndex(); match < newest || match+c.maxPromoteLag < last {
			return fmt.Errorf("%w: promote %d: its match index %d is below the membership's entry %d or more than %d behind the last index %d",
				ErrBadConfChange, cc.ID, match, newest, c.maxPromoteLag, last)
		}
	}
	return nil
}

// maybeStepDownRemoved: a leader that is no longer a voter leads until
// the change that removed it commits (dissertation §4.2.2), then hands over
// to the most up-to-date voter and steps down.
func (c *Core) maybeStepDownRemoved() {
	if c.role != RoleLeader || c.isVoter(c.id) || len(c.mem.log) > 0 {
		return
	}
	var best uint64
	for _, id := range c.voters {
		if best == None || c.prs[id].match > c.prs[best].match {
			best = id
		}
	}
	c.logger.Infof("raftlog: leader %d is no longer a voter and the change is committed (%d): it steps down", c.id, c.log.committed)
	if best != None && c.prs[best].match == c.log.lastIndex() {
		c.send(Message{Type: MsgTimeoutNow, To: best})
	}
	c.becomeFollower(c.term, None)
}

// mayHearFrom reports whether a network message from m.From may reach the
// state machine. Once this node knows a membership, vote requests come
// only from its members, and nothing but a leader's traffic comes from a
// node that is not a member: a leader was elected by a majority this
// node's log may not yet reflect, but a removed node (that may not know it
// was removed) must never move our term or start an election here. A
// learner's vote request is heard: a newer membership this node has not
// yet appended may have promoted it (a demoted node promoted back, whose
// promotion committed on a quorum without us), and it may be the only
// candidate that can win. A learner that still believes itself a voter
// is no more disruptive than a voter (PreVote and the lease guard both).
// A node with no membership yet (joining) hears anybody but votes for
// nobody.
func (c *Core) mayHearFrom(m Message) bool {
	if m.Type == MsgVote || m.Type == MsgPreVote {
		return c.isMember(m.From)
	}
	if len(c.voters) == 0 && len(c.learners) == 0 || c.isMember(m.From) {
		return true
	}
	switch m.Type {
	case MsgApp, MsgHeartbeat, MsgSnap:
		return true
	case MsgTimeoutNow:
		return m.From == c.lead
	}
	return false
}

// Conf returns the membership in force.
func (c *Core) Conf() ConfState { return c.mem.current().Clone() }
