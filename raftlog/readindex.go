package raftlog

// maxPendingReads bounds the read-index requests a leader holds; more are
// dropped and their callers time out.
const maxPendingReads = 4096

// readIndexStatus is one pending read-index request on a leader.
type readIndexStatus struct {
	req   Message
	index uint64
	acks  map[uint64]bool
}

// readOnly tracks read-index requests waiting for a quorum of heartbeat
// answers (Raft thesis §6.4). Requests are keyed by their context, which
// the caller keeps unique.
type readOnly struct {
	pending map[string]*readIndexStatus
	queue   []string
}

func newReadOnly() readOnly {
	return readOnly{pending: make(map[string]*readIndexStatus)}
}

func (ro *readOnly) add(index uint64, m Message) {
	ctx := string(m.Context)
	if _, ok := ro.pending[ctx]; ok {
		return
	}
	ro.pending[ctx] = &readIndexStatus{req: m, index: index, acks: make(map[uint64]bool)}
	ro.queue = append(ro.queue, ctx)
}

// ack records that id answered a heartbeat with ctx and returns who has
// acknowledged it (nil if unknown).
func (ro *readOnly) ack(id uint64, ctx []byte) map[uint64]bool {
	rs, ok := ro.pending[string(ctx)]
	if !ok {
		return nil
	}
	rs.acks[id] = true
	return rs.acks
}

// advance removes and returns every request up to and including ctx: a
// quorum confirming ctx confirms all older ones.
func (ro *readOnly) advance(ctx []byte) []*readIndexStatus {
	i := -1
	for j, c := range ro.queue {
		if c == string(ctx) {
			i = j
			break
		}
	}
	if i < 0 {
		return nil
	}
	done := make([]*readIndexStatus, 0, i+1)
	for _, c := range ro.queue[:i+1] {
		done = append(done, ro.pending[c])
		delete(ro.pending, c)
	}
	ro.queue = ro.queue[i+1:]
	return done
}

func (ro *readOnly) lastPendingContext() []byte {
	if len(ro.queue) == 0 {
		return nil
	}
	return []byte(ro.queue[len(ro.queue)-1])
}

// committedInTerm reports whether the leader has committed an entry of its
// term, and so knows the cluster's commit index.
func (c *Core) committedInTerm() bool {
	return c.log.termOrZero(c.log.committed) == c.term
}

// handleReadIndex serves a read-index request on the leader.
func (c *Core) handleReadIndex(m Message) {
	if !c.committedInTerm() {
		// Until then our commit index may be behind the cluster's.
		if len(c.pendingReads) >= maxPendingReads {
			c.logger.Warnf("raftlog: leader %d drops read index: %d already waiting", c.id, len(c.pendingReads))
			return
		}
		c.pendingReads = append(c.pendingReads, m)
		return
	}
	if c.soleVoter() {
		c.answerRead(m, c.log.committed)
		return
	}
	if len(c.readOnly.queue) >= maxPendingReads {
		c.logger.Warnf("raftlog: leader %d drops read index: %d already pending", c.id, len(c.readOnly.queue))
		return
	}
	c.readOnly.add(c.log.committed, m)
	c.readOnly.ack(c.id, m.Context)
	c.bcastHeartbeat()
}

// releasePendingReads serves the reads that waited for a commit in term.
func (c *Core) releasePendingReads() {
	if len(c.pendingReads) == 0 || !c.committedInTerm() {
		return
	}
	reads := c.pendingReads
	c.pendingReads = nil
	for _, m := range reads {
		c.handleReadIndex(m)
	}
}

// handleReadAck counts a heartbeat answer toward pending reads.
func (c *Core) handleReadAck(m Message) {
	if len(m.Context) == 0 {
		return
	}
	acks := c.readOnly.ack(m.From, m.Context)
	if acks == nil || !c.voters.agree(func(id uint64) bool { return acks[id] }) {
		return
	}
	for _, rs := range c.readOnly.advance(m.Context) {
		c.answerRead(rs.req, rs.index)
	}
}

// answerRead delivers a read index locally or to the follower that asked.
func (c *Core) answerRead(req Message, index uint64) {
	if req.From == None || req.From == c.id {
		c.readStates = append(c.readStates, ReadState{Index: index, Context: req.Context})
		return
	}
	c.send(Message{Type: MsgReadIndexResp, To: req.From, Index: index, Context: req.Context})
}
