package raftlog

// handleAppend checks a MsgApp against the log (Raft §5.3) and answers
// with the last matching index, or a rejection with a back-off hint.
func (c *Core) handleAppend(m Message) {
	if m.Index < c.log.committed {
		// Everything up to committed matches the leader already.
		c.send(Message{Type: MsgAppResp, To: m.From, Index: c.log.committed})
		return
	}
	if lastNew, ok := c.log.maybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries); ok {
		c.send(Message{Type: MsgAppResp, To: m.From, Index: lastNew})
		return
	}
	resp := Message{Type: MsgAppResp, To: m.From, Index: m.Index, Reject: true}
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

// handleHeartbeat learns the commit index (the leader caps it at our match)
// and echoes the read-index context.
func (c *Core) handleHeartbeat(m Message) {
	c.log.commitTo(m.Commit)
	c.send(Message{Type: MsgHeartbeatResp, To: m.From, Context: m.Context})
}

// handleSnapshot restores the log from a snapshot newer than our commit
// index; Ready.Snapshot then asks the caller to install it.
func (c *Core) handleSnapshot(m Message) {
	s := m.Snapshot
	if c.restore(s) {
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
		return false
	}
	c.log.restore(s)
	if len(s.Conf.Voters) > 0 && validateVoters(c.id, s.Conf.Voters) == nil {
		c.voters = append([]uint64(nil), s.Conf.Voters...)
		c.prs = make(map[uint64]*progress, len(c.voters))
		for _, id := range c.voters {
			c.prs[id] = newProgress(c.log.lastIndex()+1, c.maxInflightMsgs)
		}
	}
	return true
}
