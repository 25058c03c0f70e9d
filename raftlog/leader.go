package raftlog

import (
	"errors"
	"fmt"
)

// stepLeader handles messages for leaders.
func (c *Core) stepLeader(m Message) error {
	switch m.Type {
	case MsgBeat:
		c.bcastHeartbeat()
		return nil
	case MsgProp:
		return c.propose(m.Entries)
	case MsgReadIndex:
		c.handleReadIndex(m)
		return nil
	}

	pr := c.prs[m.From]
	if pr == nil || m.From == c.id {
		c.logger.Debugf("raftlog: leader %d ignores %v from %d", c.id, m.Type, m.From)
		return nil
	}
	if m.Type == MsgAppResp || m.Type == MsgHeartbeatResp {
		pr.noteRecoveryReport(m)
		defer c.maybeRepairRecovering()
	}
	switch m.Type {
	case MsgAppResp:
		if !m.Reject && m.Index > c.log.lastIndex() {
			// We never sent that index: forged, or from an earlier
			// incarnation of a log we no longer hold.
			c.logger.Warnf("raftlog: leader %d ignores %d's ack of index %d beyond its last %d",
				c.id, m.From, m.Index, c.log.lastIndex())
			return nil
		}
		pr.heard()
		if m.Reject {
			c.handleAppendReject(m, pr)
		} else {
			c.handleAppendAck(m, pr)
		}
	case MsgHeartbeatResp:
		pr.heard()
		pr.probeSent = false
		if pr.state == stateReplicate && pr.inflights.full() {
			pr.inflights.freeFirstOne()
		}
		// A follower whose commit lags what a heartbeat offers it has not
		// verified our log in this term (it restarted, or lost data): an
		// append, even an empty one, lets it.
		if pr.match < c.log.lastIndex() || m.Commit < min(pr.match, c.log.committed) {
			c.sendAppend(m.From)
		}
		c.handleReadAck(m)
	case MsgSnapStatus:
		if pr.state != stateSnapshot {
			return nil
		}
		if m.Reject {
			pr.pendingSnapshot = 0 // resume from match
		}
		pr.becomeProbe()
		// Wait for a heartbeat answer before the next MsgApp.
		pr.probeSent = true
	case MsgUnreachable:
		if pr.state == stateReplicate {
			pr.becomeProbe()
		}
	case MsgTransferLeader:
		c.handleTransferLeader(m.From, pr)
	}
	return nil
}

func (c *Core) propose(ents []Entry) error {
	if len(ents) == 0 {
		panic(fmt.Sprintf("raftlog: node %d: empty proposal", c.id))
	}
	conf := -1
	for i := range ents {
		if ents[i].Type == EntryConfChange {
			if conf >= 0 {
				return fmt.Errorf("%w: two changes in one proposal", ErrBadConfChange)
			}
			conf = i
		}
	}
	if conf >= 0 {
		if err := c.checkConfProposal(ents[conf]); err != nil {
			return err
		}
	}
	if c.leadTransferee != None {
		return fmt.Errorf("transferring leadership to %d: %w", c.leadTransferee, ErrProposalDropped)
	}
	if li := c.log.lastIndex(); uint64(len(ents)) > MaxIndex-li {
		return fmt.Errorf("last index %d + %d entries passes %d: %w", li, len(ents), MaxIndex, ErrProposalDropped)
	}
	size := payloadSize(ents)
	if c.maxUncommittedBytes > 0 && c.uncommittedBytes > 0 && c.uncommittedBytes+size > c.maxUncommittedBytes {
		return fmt.Errorf("uncommitted bytes %d + %d over limit %d: %w",
			c.uncommittedBytes, size, c.maxUncommittedBytes, ErrProposalDropped)
	}
	c.uncommittedBytes += size
	c.appendEntries(ents)
	if conf >= 0 {
		c.pendingConfIndex = ents[conf].Index
	}
	c.bcastAppend()
	return nil
}

// handleAppendAck: the follower holds our log up to m.Index.
func (c *Core) handleAppendAck(m Message, pr *progress) {
	wasPaused := pr.isPaused()
	if !pr.maybeUpdate(m.Index) {
		return
	}
	switch {
	case pr.state == stateProbe:
		pr.becomeReplicate()
	case pr.state == stateSnapshot && pr.match >= pr.pendingSnapshot:
		pr.becomeProbe()
		pr.becomeReplicate()
	case pr.state == stateReplicate:
		pr.inflights.freeLE(m.Index)
	}
	if c.maybeCommit() {
		c.onCommit()
	} else if wasPaused {
		c.sendAppend(m.From)
	}
	// Fill the window.
	for c.maybeSendAppend(m.From, false) {
	}
	if m.From == c.leadTransferee && pr.match == c.log.lastIndex() {
		c.logger.Infof("raftlog: leader %d sends timeout-now to %d: log caught up", c.id, m.From)
		c.send(Message{Type: MsgTimeoutNow, To: m.From})
	}
}

// handleAppendReject backs off using the follower's hint: LogTerm is the
// term of its entry at the rejected index (0 if its log is shorter) and
// RejectHint the first index it holds of that term (or its last index+1).
func (c *Core) handleAppendReject(m Message, pr *progress) {
	nextProbe := m.RejectHint
	if m.LogTerm > 0 {
		// If we hold the follower's conflicting term too, our logs likely
		// agree up to our last entry of it.
		if i := c.log.lastIndexOfTerm(min(m.Index, c.log.lastIndex()), m.LogTerm); i > 0 {
			nextProbe = max(i+1, m.RejectHint)
		}
	}
	if c.lostData(m, pr, nextProbe) {
		return
	}
	if pr.maybeDecrTo(m.Index, nextProbe) {
		if pr.state == stateReplicate {
			pr.becomeProbe()
		}
		c.sendAppend(m.From)
	}
}

// maybeCommit advances the commit index to the highest current-term entry
// that a quorum (this node counting only persisted entries) holds.
func (c *Core) maybeCommit() bool {
	ci := c.voters.committedIndex(func(id uint64) uint64 { return c.prs[id].match })
	return ci > 0 && c.log.maybeCommit(ci, c.term)
}

// onCommit runs after the leader's commit index advanced.
func (c *Core) onCommit() {
	c.mem.compact(c.log.committed)
	c.releasePendingReads()
	c.bcastAppend()
	c.maybeStepDownRemoved()
	c.maybeRepairRecovering()
}

// bcastAppend sends every follower what it lacks (at least the commit
// index), filling the inflight window of those in replicate state.
func (c *Core) bcastAppend() {
	for _, id := range c.peers() {
		c.sendAppend(id)
		for c.maybeSendAppend(id, false) {
		}
	}
}

// sendAppend sends entries (or just the commit index) to a follower.
func (c *Core) sendAppend(to uint64) { c.maybeSendAppend(to, true) }

// maybeSendAppend sends the follower its next entries, or a snapshot if
// they are compacted. With sendIfEmpty false, nothing goes out when there
// are no new entries. It reports whether a message was sent.
func (c *Core) maybeSendAppend(to uint64, sendIfEmpty bool) bool {
	pr := c.prs[to]
	if pr.isPaused() {
		return false
	}
	prevIndex := pr.next - 1
	prevTerm, errTerm := c.log.term(prevIndex)
	ents, errEnts := c.log.entries(pr.next, c.maxMsgBytes)
	if errTerm != nil || errEnts != nil {
		return c.sendSnapshot(to, pr, errors.Join(errTerm, errEnts))
	}
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	c.send(Message{Type: MsgApp, To: to, Index: prevIndex, LogTerm: prevTerm,
		Entries: ents, Commit: c.log.committed})
	var last uint64
	if len(ents) > 0 {
		last = ents[len(ents)-1].Index
	}
	pr.sentEntries(len(ents), last)
	return true
}

// sendSnapshot is how a follower catches up when the entries it needs are
// compacted away.
func (c *Core) sendSnapshot(to uint64, pr *progress, cause error) bool {
	if !errors.Is(cause, ErrCompacted) {
		panic(fmt.Sprintf("raftlog: leader %d: log for %d (next %d) unreadable: %v", c.id, to, pr.next, cause))
	}
	if !c.recentlyActive(pr) {
		// Not worth a snapshot until the peer proves alive.
		return false
	}
	snap := mustStorage(c.log.snapshot())
	if snap.IsEmpty() {
		panic(fmt.Sprintf("raftlog: leader %d: log compacted but no snapshot (first index %d)",
			c.id, c.log.firstIndex()))
	}
	c.logger.Infof("raftlog: leader %d sends snapshot %d/%d to %d (next %d)", c.id, snap.Index, snap.Term, to, pr.next)
	c.send(Message{Type: MsgSnap, To: to, Snapshot: snap})
	pr.becomeSnapshot(snap.Index)
	return true
}

// bcastHeartbeat sends heartbeats carrying the newest pending read-index
// context, so that one quorum of answers confirms every read so far.
func (c *Core) bcastHeartbeat() {
	ctx := c.readOnly.lastPendingContext()
	for _, id := range c.peers() {
		c.sendHeartbeat(id, ctx)
	}
}

// sendHeartbeat carries min(match, commit): a follower may not yet hold
// entries up to our commit index.
func (c *Core) sendHeartbeat(to uint64, ctx []byte) {
	c.send(Message{Type: MsgHeartbeat, To: to, Commit: min(c.prs[to].match, c.log.committed), Context: ctx})
}

func (c *Core) handleTransferLeader(to uint64, pr *progress) {
	if c.leadTransferee != None {
		if c.leadTransferee == to {
			return // already under way
		}
		c.abortLeaderTransfer()
	}
	if to == c.id {
		return
	}
	c.logger.Infof("raftlog: leader %d starts transfer to %d at term %d", c.id, to, c.term)
	// The transfer must finish within an election timeout.
	c.electionElapsed = 0
	c.leadTransferee = to
	if pr.match == c.log.lastIndex() {
		c.send(Message{Type: MsgTimeoutNow, To: to})
		return
	}
	c.sendAppend(to)
}

// lostData handles a fresh rejection that asks for an entry at or below
// the follower's recorded match: the follower lost data it acknowledged
// (its data directory was wiped or repaired), so match no longer holds.
// Without this the leader never probes below match and the follower is
// stuck. Match drops to the follower's commit index (committed entries are
// in our log too), and probing resumes from the hint, or a snapshot if
// those entries are compacted. A duplicated probe's late rejection may
// trigger this too; that costs one more probe round trip.
func (c *Core) lostData(m Message, pr *progress, nextProbe uint64) bool {
	if nextProbe > pr.match {
		return false
	}
	switch pr.state {
	case stateReplicate:
		if m.Index < pr.match {
			return false // older than what matched: stale
		}
	case stateProbe:
		if pr.next-1 != m.Index {
			return false // not the probe we are waiting for
		}
	default:
		return false
	}
	c.logger.Warnf("raftlog: leader %d: follower %d rejects index %d (hint %d, its commit %d) below its acknowledged match %d: it lost data; probing again",
		c.id, m.From, m.Index, m.RejectHint, m.Commit, pr.match)
	pr.match = min(pr.match, m.Commit)
	pr.becomeProbe()
	pr.next = max(min(nextProbe, m.Index), pr.match+1)
	c.sendAppend(m.From)
	return true
}
