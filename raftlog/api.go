package raftlog

import (
	"fmt"
	"slices"
)

// maxProposalEntries bounds one ProposeBatch.
const maxProposalEntries = 1 << 16

// Propose appends data as an EntryNormal. Only a leader that is not
// transferring leadership and is under its uncommitted-bytes limit accepts
// it; otherwise the error wraps ErrProposalDropped.
func (c *Core) Propose(data []byte) error {
	return c.ProposeBatch([][]byte{data})
}

// ProposeBatch proposes all of data as consecutive entries in one step, or
// none of it.
func (c *Core) ProposeBatch(data [][]byte) error {
	if len(data) == 0 {
		return nil
	}
	if len(data) > maxProposalEntries {
		return fmt.Errorf("batch of %d entries, at most %d: %w", len(data), maxProposalEntries, ErrProposalDropped)
	}
	ents := make([]Entry, len(data))
	for i, d := range data {
		ents[i] = Entry{Type: EntryNormal, Data: d}
	}
	return c.Step(Message{Type: MsgProp, From: c.id, Entries: ents})
}

// Campaign starts an election now (a pre-election first with PreVote).
func (c *Core) Campaign() error { return c.Step(Message{Type: MsgHup}) }

// ReadIndex requests a read index for ctx, which the caller keeps unique.
// The answer arrives as a Ready.ReadStates entry with the same context, or
// never (leadership lost, no leader): the caller times out.
func (c *Core) ReadIndex(ctx []byte) {
	_ = c.Step(Message{Type: MsgReadIndex, Context: ctx})
}

// TransferLeadership asks the leader (directly, or through this follower)
// to hand leadership to node to.
func (c *Core) TransferLeadership(to uint64) {
	_ = c.Step(Message{Type: MsgTransferLeader, From: to})
}

// ReportUnreachable tells a leader that a message to id could not be sent;
// replication to it falls back to probing.
func (c *Core) ReportUnreachable(id uint64) {
	_ = c.Step(Message{Type: MsgUnreachable, From: id})
}

// ReportSnapshot tells a leader whether the snapshot it asked to send to id
// was delivered and installed (ok) or failed.
func (c *Core) ReportSnapshot(id uint64, ok bool) {
	_ = c.Step(Message{Type: MsgSnapStatus, From: id, Reject: !ok})
}

// HasReady reports whether Ready would return any work.
func (c *Core) HasReady() bool {
	if c.softState() != c.prevSoft {
		return true
	}
	if hs := c.hardState(); hs != c.prevHard {
		return true
	}
	return c.log.unstable.snapshot != nil ||
		len(c.log.unstableEntries()) > 0 ||
		len(c.msgs) > 0 ||
		len(c.readStates) > 0 ||
		c.log.hasNextCommittedEnts()
}

// Ready returns the pending work. Messages and ReadStates are handed over
// (the next Ready will not repeat them); entries, snapshot and committed
// entries are repeated until Advance. Call Advance(rd) before the next
// Ready.
func (c *Core) Ready() Ready {
	// Every earlier Ready was persisted before this one is asked for: its
	// term is durable.
	durableTerm := c.prevHard.Term
	rd := Ready{
		Entries:          c.log.unstableEntries(),
		CommittedEntries: c.log.nextCommittedEnts(),
		ReadStates:       c.readStates,
	}
	rd.Messages, rd.early = splitEarly(mergeMessages(c.msgs, c.maxMsgBytes), c.id, c.role, durableTerm)
	if ss := c.softState(); ss != c.prevSoft {
		rd.SoftState = &ss
		c.prevSoft = ss
	}
	if hs := c.hardState(); hs != c.prevHard {
		rd.HardState = hs
		rd.MustSync = hs.Term != c.prevHard.Term || hs.Vote != c.prevHard.Vote
		c.prevHard = hs
	}
	if s := c.log.unstable.snapshot; s != nil {
		rd.Snapshot = *s
		rd.MustSync = true
	}
	if len(rd.Entries) > 0 {
		rd.MustSync = true
	}
	c.msgs = nil
	c.readStates = nil
	return rd
}

// splitEarly puts first the messages that may leave before the Ready's
// write (Raft dissertation §10.2.1): a leader's appends and heartbeats in a
// term already durable. They carry entries the leader has not yet made
// durable, which is safe: the leader counts itself toward commit only at
// Advance, and applies only entries it persisted. Everything else waits:
// votes and vote requests (they promise a term and vote that must survive
// a crash) and append responses (they promise entries are durable).
func splitEarly(msgs []Message, self uint64, role Role, durableTerm uint64) ([]Message, int) {
	if role != RoleLeader {
		return msgs, 0
	}
	isEarly := func(m *Message) bool {
		return (m.Type == MsgApp || m.Type == MsgHeartbeat) && m.From == self && m.Term <= durableTerm
	}
	early := 0
	for i := range msgs {
		if isEarly(&msgs[i]) {
			early++
		}
	}
	if early == 0 || early == len(msgs) {
		return msgs, early
	}
	out := make([]Message, 0, len(msgs))
	for i := range msgs {
		if isEarly(&msgs[i]) {
			out = append(out, msgs[i])
		}
	}
	for i := range msgs {
		if !isEarly(&msgs[i]) {
			out = append(out, msgs[i])
		}
	}
	return out, early
}

// Advance tells the core that the caller has done everything rd asked:
// entries and HardState are durable, the snapshot installed, messages sent,
// committed entries applied.
func (c *Core) Advance(rd Ready) {
	if !rd.Snapshot.IsEmpty() {
		c.log.stableSnapTo(rd.Snapshot.Index)
		if rd.Snapshot.Index > c.log.applied {
			c.log.appliedTo(rd.Snapshot.Index)
		}
	}
	if n := len(rd.Entries); n > 0 {
		last := rd.Entries[n-1]
		c.log.stableTo(last.Index, last.Term)
	}
	if n := len(rd.CommittedEntries); n > 0 {
		c.log.appliedTo(rd.CommittedEntries[n-1].Index)
		if c.role == RoleLeader {
			c.uncommittedBytes -= min(c.uncommittedBytes, payloadSize(rd.CommittedEntries))
		}
	}
	c.maybeEndRecovery()
	if c.role != RoleLeader {
		c.mem.compact(c.log.committed)
	}
	if c.role == RoleLeader {
		// Our own entries count toward commit only now that they are
		// durable: this is what commits a one-node cluster.
		if c.prs[c.id].maybeUpdate(c.log.persistedLastIndex()) && c.maybeCommit() {
			c.onCommit()
		}
	}
}

// Status reports this node's state; Progress is set on a leader.
func (c *Core) Status() Status {
	s := Status{
		ID:         c.id,
		Role:       c.role,
		Term:       c.term,
		Vote:       c.vote,
		Lead:       c.lead,
		Commit:     c.log.committed,
		Applied:    c.log.applied,
		LastIndex:  c.log.lastIndex(),
		Recovering: c.rec.recovering(),
		Conf:       c.Conf(),
	}
	switch {
	case c.role == RoleLeader:
		s.LeaderActive = c.checkQuorumActive()
	case c.lead != None:
		s.LeaderActive = c.electionElapsed < c.electionTicks
	}
	if c.role == RoleLeader {
		s.Progress = make(map[uint64]PeerProgress, len(c.prs))
		for id, pr := range c.prs {
			if id == c.id && !c.isMember(id) {
				continue
			}
			s.Progress[id] = PeerProgress{Match: pr.match, Next: pr.next,
				RecentActive: id == c.id || c.recentlyActive(pr), Learner: slices.Contains(c.learners, id)}
		}
	}
	return s
}
