package raftlog

// handleAppend checks a MsgApp against the log (Raft §5.3) and answers
// with the last matching index, or a rejection with a back-off hint.
func (c *Core) handleAppend(m Message) {
	defer c.learnRecoveryTarget(m)
	if m.Index < c.log.committed {
		// Everything up to committed matches the leader already.
		c.send(Message{Type: MsgAppResp, To: m.From, Index: c.log.committed})
		return
	}
	if lastNew, ok := c.log.maybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries); ok {
		// The leader never truncates its own log in its term, so what it
		// verified stays verified.
		c.verified = max(c.verified, lastNew)
		c.noteConfEntries(m.Entries)
		c.send(Message{Type: MsgAppResp, To: m.From, Index: lastNew})
		return
	}
	// Commit tells the leader how much of our log is proven to match its
	// own (committed entries are in every later leader's log): all it may
	// keep of its recorded match if we lost data.
	resp := Message{Type: MsgAppResp, To: m.From, Index: m.Index, Reject: true, Commit: c.log.committed}
	if last := c.log.lastIndex(); m.Index > last {
		// Too short: try after our last entry.
		resp.RejectHint = last + 1
	} else {
		// Conflicting term: skip all of it at once. Entries up to committed
		// match, so the walk stops there.
		resp.LogTerm = c.log.termOrZero(m.Index)
		resp.RejectHint = c.log.firstIndexOfTerm(m.Index, resp.LogTerm, c.log.committed+1)
	}
	c.logger.Debugf("raftlog: node %d rejects MsgApp %d/%d from %d: hint %d/%d",
		c.id, m.Index, m.LogTerm, m.From, resp.RejectHint, resp.LogTerm)
	c.send(resp)
}

// handleHeartbeat learns the commit index and echoes the read-index
// context. The leader caps the commit at its recorded match for us, but
// that match may predate a loss of our data (and our log may since hold a
// stale leader's entries at those indexes), so we cap it again at what
// this leader verified in this term. The answer carries our commit index:
// a leader seeing it lag sends a MsgApp, whose acceptance verifies.
func (c *Core) handleHeartbeat(m Message) {
	c.log.commitTo(min(m.Commit, c.verified))
	c.send(Message{Type: MsgHeartbeatResp, To: m.From, Context: m.Context, Commit: c.log.committed})
}

// handleSnapshot restores the log from a snapshot newer than our commit
// index; Ready.Snapshot then asks the caller to install it.
func (c *Core) handleSnapshot(m Message) {
	s := m.Snapshot
	if c.restore(s) {
		c.verified = s.Index
		c.logger.Infof("raftlog: node %d restored snapshot %d/%d", c.id, s.Index, s.Term)
		c.send(Message{Type: MsgAppResp, To: m.From, Index: c.log.lastIndex()})
		return
	}
	c.send(Message{Type: MsgAppResp, To: m.From, Index: c.log.committed})
}

func (c *Core) restore(s SnapshotMeta) bool {
	if s.Index <= c.log.committed {
		return false
	}
	if c.log.matchTerm(s.Index, s.Term) {
		// We hold the snapshot's last entry, hence everything before it:
		// just learn that it is committed.
		c.log.commitTo(s.Index)
		c.verified = max(c.verified, s.Index)
		return false
	}
	c.log.restore(s)
	c.restoreConf(s)
	return true
}
