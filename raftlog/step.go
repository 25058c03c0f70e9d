package raftlog

import "fmt"

// Step feeds one message to the core: a network message from a peer or a
// local input (MsgHup, MsgProp, ...). Messages of an older term are
// answered or ignored; a newer term makes the node a follower first (except
// for pre-votes and during a leader lease).
//
// Local types (m.Type.IsLocal()) enter through the methods (Propose,
// Campaign, Report...); the caller must drop any that arrive from the
// network. Step may be called between Ready and Advance.
//
// A network message that breaks ValidateMessage's rules is refused with an
// error wrapping ErrInvalidMessage and changes nothing: the caller should
// have dropped it already, but no input may make the core panic.
func (c *Core) Step(m Message) error {
	if fromNetwork(m) {
		if err := ValidateMessage(m); err != nil {
			c.logger.Warnf("raftlog: node %d refuses a message: %v", c.id, err)
			return err
		}
		if !c.mayHearFrom(m) {
			c.logger.Debugf("raftlog: node %d ignores %v from %d at term %d: not a member (voters %v, learners %v)",
				c.id, m.Type, m.From, m.Term, c.voters, c.learners)
			return nil
		}
	}
	switch {
	case m.Term == 0:
		// Local input or a term-less forward.
	case m.Term > c.term:
		if m.Type == MsgVote || m.Type == MsgPreVote {
			if string(m.Context) != transferContext && c.inLease(m.Type) {
				// A leader was heard from recently: this candidate was cut
				// off or is about to be. Ignore it (thesis §4.2.3).
				c.logger.Debugf("raftlog: node %d ignores %v from %d at term %d: lease (leader %d)",
					c.id, m.Type, m.From, m.Term, c.lead)
				return nil
			}
		}
		switch {
		case m.Type == MsgPreVote:
			// Never changes our term.
		case m.Type == MsgPreVoteResp && !m.Reject:
			// The pre-candidate bumps its term once it wins the pre-vote.
		case m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap:
			c.becomeFollower(m.Term, m.From)
		default:
			c.becomeFollower(m.Term, None)
		}
	case m.Term < c.term:
		switch m.Type {
		case MsgApp, MsgHeartbeat:
			// A stale leader: tell it the newer term so it steps down. (Its
			// partition may have healed without it noticing.)
			c.send(Message{To: m.From, Type: MsgAppResp})
		case MsgPreVote:
			// Reject with our term so the pre-candidate catches up.
			c.send(Message{To: m.From, Type: MsgPreVoteResp, Term: c.term, Reject: true})
		}
		return nil
	}

	c.noticeAmnesia(m)
	switch m.Type {
	case MsgHup:
		c.hup(c.defaultCampaign())
	case MsgVote, MsgPreVote:
		c.handleVoteRequest(m)
	default:
		return c.step(m)
	}
	return nil
}

// fromNetwork reports whether m can only have come from another node (as
// opposed to the local calls, which enter Step with no term).
func fromNetwork(m Message) bool {
	switch m.Type {
	case MsgHup, MsgBeat, MsgProp, MsgSnapStatus, MsgUnreachable:
		return false
	case MsgTransferLeader:
		return m.Term != 0
	case MsgReadIndex:
		return m.From != None
	}
	return true
}

// inLease reports whether this node heard from a leader within the
// election timeout and so refuses a vote request of type t. PreVote always
// honours the lease; a real vote only under CheckQuorum.
func (c *Core) inLease(t MessageType) bool {
	if t == MsgVote && !c.checkQuorum {
		return false
	}
	return c.lead != None && c.electionElapsed < c.electionTicks
}

func (c *Core) handleVoteRequest(m Message) {
	resp := voteRespType(m.Type)
	if c.rec.active {
		// It may have forgotten a vote of this term, or entries that make
		// the candidate's log not up to date.
		c.logger.Infof("raftlog: node %d rejects %v from %d at term %d: recovering", c.id, m.Type, m.From, m.Term)
		if c.term > 0 {
			// (A rejection needs a term; at term 0 silence says as much.)
			c.send(Message{To: m.From, Type: resp, Term: c.term, Reject: true})
		}
		return
	}
	canVote := c.vote == m.From ||
		(c.vote == None && c.lead == None) ||
		(m.Type == MsgPreVote && m.Term > c.term)
	if canVote && c.log.isUpToDate(m.Index, m.LogTerm) {
		// A pre-vote is granted at the term the candidate would take.
		c.send(Message{To: m.From, Type: resp, Term: m.Term})
		if m.Type == MsgVote {
			c.electionElapsed = 0
			c.vote = m.From
		}
		return
	}
	c.send(Message{To: m.From, Type: resp, Term: c.term, Reject: true})
}

func voteRespType(t MessageType) MessageType {
	switch t {
	case MsgVote:
		return MsgVoteResp
	case MsgPreVote:
		return MsgPreVoteResp
	}
	panic(fmt.Sprintf("raftlog: not a vote request: %v", t))
}

// hup starts an election unless this node is leader or may not campaign.
func (c *Core) hup(kind campaignKind) {
	if c.role == RoleLeader {
		return
	}
	if !c.promotable() {
		c.logger.Warnf("raftlog: node %d cannot campaign", c.id)
		return
	}
	if c.term >= MaxTerm || c.log.lastIndex() >= MaxIndex {
		// Only forged input gets here; the next term or the no-op's index
		// would pass the bound.
		c.logger.Warnf("raftlog: node %d cannot campaign: term %d or last index %d is at the limit %d",
			c.id, c.term, c.log.lastIndex(), MaxTerm)
		return
	}
	c.campaign(kind)
}

func (c *Core) campaign(kind campaignKind) {
	var term uint64
	var voteType MessageType
	if kind == campaignPreElection {
		c.becomePreCandidate()
		voteType, term = MsgPreVote, c.term+1
	} else {
		c.becomeCandidate()
		voteType, term = MsgVote, c.term
	}
	// Our own vote counts at once: the HardState carrying it is persisted
	// in the same Ready before any message of this election goes out.
	if c.poll(c.id, true) == voteWon {
		c.wonElection(kind)
		return
	}
	var ctx []byte
	if kind == campaignTransfer {
		ctx = []byte(transferContext)
	}
	for _, id := range c.voters {
		if id == c.id {
			continue
		}
		c.send(Message{To: id, Type: voteType, Term: term,
			Index: c.log.lastIndex(), LogTerm: c.log.lastTerm(), Context: ctx})
	}
}

func (c *Core) wonElection(kind campaignKind) {
	if c.role == RolePreCandidate {
		c.campaign(campaignElection)
		return
	}
	c.becomeLeader()
	c.bcastAppend()
}

type voteResult uint8

const (
	votePending voteResult = iota
	voteWon
	voteLost
)

// poll records id's answer (the first one counts) and tallies.
func (c *Core) poll(id uint64, granted bool) voteResult {
	if _, ok := c.votes[id]; !ok {
		c.votes[id] = granted
	}
	return c.voters.voteResult(c.votes)
}

// stepCandidate handles messages for pre-candidates and candidates.
func (c *Core) stepCandidate(m Message) error {
	myResp := MsgVoteResp
	if c.role == RolePreCandidate {
		myResp = MsgPreVoteResp
	}
	switch m.Type {
	case MsgProp:
		return ErrProposalDropped
	case MsgApp:
		c.becomeFollower(m.Term, m.From)
		c.handleAppend(m)
	case MsgHeartbeat:
		c.becomeFollower(m.Term, m.From)
		c.handleHeartbeat(m)
	case MsgSnap:
		c.becomeFollower(m.Term, m.From)
		c.handleSnapshot(m)
	case myResp:
		switch c.poll(m.From, !m.Reject) {
		case voteWon:
			c.wonElection(campaignElection)
		case voteLost:
			c.becomeFollower(c.term, None)
		}
	case MsgReadIndex:
		c.logger.Debugf("raftlog: node %d drops read index: no leader", c.id)
	}
	return nil
}

// stepFollower handles messages for followers.
func (c *Core) stepFollower(m Message) error {
	switch m.Type {
	case MsgProp:
		return ErrProposalDropped
	case MsgApp:
		c.electionElapsed = 0
		c.setLead(m.From)
		c.handleAppend(m)
	case MsgHeartbeat:
		c.electionElapsed = 0
		c.setLead(m.From)
		c.handleHeartbeat(m)
	case MsgSnap:
		c.electionElapsed = 0
		c.setLead(m.From)
		c.handleSnapshot(m)
	case MsgTransferLeader:
		if c.lead == None {
			c.logger.Debugf("raftlog: node %d drops transfer to %d: no leader", c.id, m.From)
			return nil
		}
		c.msgs = append(c.msgs, Message{Type: MsgTransferLeader, To: c.lead, From: m.From, Term: c.term})
	case MsgTimeoutNow:
		if c.rec.active {
			c.logger.Warnf("raftlog: node %d ignores timeout-now from %d: recovering", c.id, m.From)
			return nil
		}
		c.logger.Infof("raftlog: node %d campaigns at term %d: leader transfer", c.id, c.term)
		c.hup(campaignTransfer)
	case MsgReadIndex:
		if c.lead == None {
			c.logger.Debugf("raftlog: node %d drops read index: no leader", c.id)
			return nil
		}
		c.send(Message{Type: MsgReadIndex, To: c.lead, Context: m.Context})
	case MsgReadIndexResp:
		if m.From != c.lead {
			c.logger.Debugf("raftlog: node %d ignores a read index from %d: its leader is %d", c.id, m.From, c.lead)
			return nil
		}
		c.readStates = append(c.readStates, ReadState{Index: m.Index, Context: m.Context})
	}
	return nil
}

// setLead records the leader of this term. What an earlier leader verified
// of our log says nothing about this one's.
func (c *Core) setLead(id uint64) {
	if c.lead != id {
		c.verified = 0
	}
	c.lead = id
}
