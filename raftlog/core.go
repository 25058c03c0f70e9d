package raftlog

import (
	"fmt"
	"math/rand"
	"slices"
)

// campaignKind says why a node campaigns.
type campaignKind uint8

const (
	campaignPreElection campaignKind = iota // PreVote round first
	campaignElection                        // straight to a real vote
	campaignTransfer                        // MsgTimeoutNow: bypasses leases
)

// transferContext marks vote requests of a leadership transfer so that
// followers in a leader lease still answer them.
const transferContext = "transfer"

// Core is one node's Raft state machine. It is not safe for concurrent use:
// one goroutine owns it.
type Core struct {
	id uint64

	// term, vote and the log's committed index form the HardState.
	term uint64
	vote uint64
	log  *raftLog

	role Role
	lead uint64
	// mem is the membership in force and the change entries behind it;
	// voters and learners are its current sets, sorted. prs has one entry
	// per member, and one for this node even when it is not (a leader
	// removing itself); it is only meaningful on a leader.
	mem      membership
	voters   majority
	learners []uint64
	prs      map[uint64]*progress
	// pendingConfIndex: a leader accepts no configuration change while an
	// entry at or below it may be an uncommitted one (set to the last
	// index when it takes office, then to each change it appends).
	pendingConfIndex uint64
	// maxPromoteLag: see Config.MaxPromoteLag.
	maxPromoteLag uint64
	// votes received in the current (pre-)election.
	votes map[uint64]bool

	// msgs wait for the next Ready.
	msgs       []Message
	readStates []ReadState
	readOnly   readOnly
	// pendingReads are read-index requests that arrived before the leader
	// committed an entry in its term.
	pendingReads []Message

	// leadTransferee is the node a leader is handing over to, or None.
	leadTransferee uint64
	// uncommittedBytes is the Data size of the leader's entries not yet
	// applied. Invariant: <= maxUncommittedBytes unless one entry alone is
	// larger.
	uncommittedBytes uint64

	// electionElapsed counts ticks since the last reset: for a follower
	// since it last heard from a leader, for a leader since its last
	// CheckQuorum round.
	electionElapsed  int
	heartbeatElapsed int
	// randomizedElectionTimeout is in [electionTicks, 2*electionTicks).
	randomizedElectionTimeout int

	electionTicks       int
	heartbeatTicks      int
	checkQuorum         bool
	preVote             bool
	maxMsgBytes         uint64
	maxUncommittedBytes uint64
	maxInflightMsgs     int

	rand   *rand.Rand
	logger Logger

	// verified is the highest index the current leader has shown to match
	// our log in this term (the last index of an accepted MsgApp, or an
	// installed snapshot); 0 after a change of term or leader. A heartbeat
	// advances the commit index only up to it: the leader's view of our
	// match may predate a loss of our data.
	verified uint64
	// rec is the recovering mode (Config.Recovering).
	rec recovery

	// prevSoft and prevHard are what the last Ready reported.
	prevSoft SoftState
	prevHard HardState

	tick func()
	step func(m Message) error
}

// New returns a Core that starts as a follower with the HardState and
// membership found in cfg.Storage.
func New(cfg Config) (*Core, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hs, cs, err := cfg.Storage.InitialState()
	if err != nil {
		return nil, fmt.Errorf("raftlog: load initial state: %w", err)
	}
	if cs.IsEmpty() {
		cs = ConfState{Voters: cfg.Peers}
	}
	if err := validateConfState(cs); err != nil {
		return nil, fmt.Errorf("membership %v: %v: %w", cs, err, ErrBadConfig)
	}
	log, err := newLog(cfg.Storage, cfg.MaxCommittedSizePerReady)
	if err != nil {
		return nil, fmt.Errorf("raftlog: open log: %w", err)
	}
	c := &Core{
		id:                  cfg.ID,
		log:                 log,
		mem:                 membership{base: cs.Clone()},
		maxPromoteLag:       cfg.MaxPromoteLag,
		electionTicks:       cfg.ElectionTicks,
		heartbeatTicks:      cfg.HeartbeatTicks,
		checkQuorum:         cfg.CheckQuorum,
		preVote:             cfg.PreVote,
		maxMsgBytes:         cfg.MaxSizePerMsg,
		maxUncommittedBytes: cfg.MaxUncommittedEntriesBytes,
		maxInflightMsgs:     cfg.MaxInflightMsgs,
		rand:                cfg.Rand,
		logger:              cfg.Logger,
		readOnly:            newReadOnly(),
		rec:                 recovery{active: cfg.Recovering},
	}
	if c.maxPromoteLag == 0 {
		c.maxPromoteLag = DefaultMaxPromoteLag
	}
	// The membership in force is the newest change in the log, committed
	// or not: replay the log's change entries over the stored membership.
	if err := c.loadConf(); err != nil {
		return nil, err
	}
	if cfg.Recovering && slices.Contains(c.learners, c.id) {
		// A learner restarted recovering was demoted (or joined and had
		// not caught up: then too, the leader promotes it once it has,
		// as `member add` would).
		c.rec.demoted = true
	}
	if cfg.Recovering && c.soleVoter() {
		return nil, fmt.Errorf("recovering node %d is the only voter, nothing to recover from: %w", cfg.ID, ErrBadConfig)
	}
	if c.logger == nil {
		c.logger = discardLogger{}
	}
	if err := c.loadState(hs, cfg.Applied); err != nil {
		return nil, err
	}
	c.becomeFollower(c.term, None)
	c.prevHard = c.hardState()
	c.prevSoft = c.softState()
	c.logger.Infof("raftlog: node %d starts: term=%d vote=%d commit=%d applied=%d last=%d voters=%v learners=%v recovering=%v",
		c.id, c.term, c.vote, c.log.committed, c.log.applied, c.log.lastIndex(), c.voters, c.learners, c.rec.active)
	if c.soleVoter() && c.promotable() {
		// A cluster of one has nobody to wait for: it leads from its first
		// Ready, which carries the new term, the vote and the no-op. (A
		// pre-vote would only ask itself.)
		c.campaign(campaignElection)
	}
	return c, nil
}

// loadState restores the persisted HardState and the applied index.
func (c *Core) loadState(hs HardState, applied uint64) error {
	last := c.log.lastIndex()
	if hs.Term > MaxTerm || last > MaxIndex {
		return fmt.Errorf("raftlog: persisted term %d or last index %d is above %d, which no cluster reaches (forged input?): %w",
			hs.Term, last, MaxTerm, ErrBadConfig)
	}
	if hs.Commit > last {
		return fmt.Errorf("raftlog: persisted commit %d beyond last index %d: %w", hs.Commit, last, ErrBadConfig)
	}
	if applied > last {
		return fmt.Errorf("raftlog: applied %d beyond last index %d: %w", applied, last, ErrBadConfig)
	}
	c.term, c.vote = hs.Term, hs.Vote
	c.log.commitTo(hs.Commit)
	// An applied entry was committed, even if the persisted commit lags.
	c.log.commitTo(applied)
	if applied > c.log.applied {
		c.log.appliedTo(applied)
	} else if applied < c.log.applied {
		c.logger.Warnf("raftlog: node %d: applied %d is below the log's snapshot %d; entries between are gone",
			c.id, applied, c.log.applied)
	}
	return nil
}

func (c *Core) softState() SoftState {
	return SoftState{Lead: c.lead, Role: c.role, Recovering: c.rec.recovering()}
}

func (c *Core) hardState() HardState {
	return HardState{Term: c.term, Vote: c.vote, Commit: c.log.committed}
}

// soleVoter reports whether this node is the only voter.
func (c *Core) soleVoter() bool { return len(c.voters) == 1 && c.voters[0] == c.id }

// isVoter reports whether id votes in the membership in force.
func (c *Core) isVoter(id uint64) bool { return slices.Contains(c.voters, id) }

// isMember reports whether id is a voter or a learner.
func (c *Core) isMember(id uint64) bool {
	return c.isVoter(id) || slices.Contains(c.learners, id)
}

// peers are the members other than this node, voters first, in id order.
func (c *Core) peers() []uint64 {
	out := make([]uint64, 0, len(c.voters)+len(c.learners))
	for _, id := range c.voters {
		if id != c.id {
			out = append(out, id)
		}
	}
	for _, id := range c.learners {
		if id != c.id {
			out = append(out, id)
		}
	}
	return out
}

// Lead is the leader this node knows of, or None.
func (c *Core) Lead() uint64 { return c.lead }

// Role is this node's role in its current term.
func (c *Core) Role() Role { return c.role }

// send queues m for the next Ready, stamping From and, except for vote
// traffic (which carries its own term) and term-less forwards, Term.
func (c *Core) send(m Message) {
	m.From = c.id
	switch m.Type {
	case MsgVote, MsgVoteResp, MsgPreVote, MsgPreVoteResp:
		if m.Term == 0 {
			panic(fmt.Sprintf("raftlog: %v to %d without term", m.Type, m.To))
		}
	case MsgReadIndex:
		// Forwarded without a term, like a local request.
	default:
		if m.Term != 0 {
			panic(fmt.Sprintf("raftlog: %v to %d with preset term %d", m.Type, m.To, m.Term))
		}
		m.Term = c.term
	}
	c.stampRecovery(&m)
	c.msgs = append(c.msgs, m)
}

// reset starts a new term (or a new role in the same term).
func (c *Core) reset(term uint64) {
	if c.term != term {
		c.term = term
		c.vote = None
	}
	c.lead = None
	c.verified = 0
	c.electionElapsed = 0
	c.heartbeatElapsed = 0
	c.resetRandomizedElectionTimeout()
	c.abortLeaderTransfer()
	c.votes = make(map[uint64]bool)
	c.prs = make(map[uint64]*progress, len(c.voters)+len(c.learners)+1)
	next := c.log.lastIndex() + 1
	for _, id := range append(c.peers(), c.id) {
		c.prs[id] = newProgress(next, c.maxInflightMsgs)
	}
	c.prs[c.id].match = c.log.persistedLastIndex()
	c.pendingConfIndex = 0
	c.uncommittedBytes = 0
	c.readOnly = newReadOnly()
	c.pendingReads = nil
}

func (c *Core) resetRandomizedElectionTimeout() {
	c.randomizedElectionTimeout = c.electionTicks + c.rand.Intn(c.electionTicks)
}

func (c *Core) becomeFollower(term, lead uint64) {
	c.reset(term)
	c.step = c.stepFollower
	c.tick = c.tickElection
	c.lead = lead
	c.role = RoleFollower
	c.logger.Debugf("raftlog: node %d became follower at term %d (leader %d)", c.id, term, lead)
}

func (c *Core) becomePreCandidate() {
	if c.role == RoleLeader {
		panic(fmt.Sprintf("raftlog: node %d: leader cannot become pre-candidate", c.id))
	}
	// Neither term nor vote changes: a pre-election disturbs nobody.
	c.step = c.stepCandidate
	c.tick = c.tickElection
	c.votes = make(map[uint64]bool)
	c.lead = None
	c.role = RolePreCandidate
	c.logger.Debugf("raftlog: node %d became pre-candidate at term %d", c.id, c.term)
}

func (c *Core) becomeCandidate() {
	if c.role == RoleLeader {
		panic(fmt.Sprintf("raftlog: node %d: leader cannot become candidate", c.id))
	}
	c.reset(c.term + 1)
	c.step = c.stepCandidate
	c.tick = c.tickElection
	c.vote = c.id
	c.role = RoleCandidate
	c.logger.Debugf("raftlog: node %d became candidate at term %d", c.id, c.term)
}

func (c *Core) becomeLeader() {
	if c.role == RoleFollower {
		panic(fmt.Sprintf("raftlog: node %d: follower cannot become leader", c.id))
	}
	c.reset(c.term)
	c.step = c.stepLeader
	c.tick = c.tickHeartbeat
	c.lead = c.id
	c.role = RoleLeader
	self := c.prs[c.id]
	self.becomeReplicate()
	self.heard()
	// The no-op lets the leader commit (and so learn the commit index) in
	// its own term without waiting for a client (Raft §5.4.2, §8).
	c.appendEntries([]Entry{{Type: EntryNoop}})
	// Entries from earlier terms may hold an uncommitted change; no new
	// one until the no-op commits, which commits them too. (This also
	// closes the single-server-change bug the dissertation's errata
	// describe: a new leader must commit in its term before a change.)
	c.pendingConfIndex = c.log.lastIndex()
	c.logger.Infof("raftlog: node %d became leader at term %d", c.id, c.term)
}

// appendEntries gives ents this term and the next indexes and adds them to
// the leader's unstable log. They count toward commit only once persisted.
func (c *Core) appendEntries(ents []Entry) {
	li := c.log.lastIndex()
	for i := range ents {
		ents[i].Term = c.term
		ents[i].Index = li + 1 + uint64(i)
	}
	c.log.append(ents...)
	c.noteConfEntries(ents)
}

// promotable reports whether this node may campaign: a voter, not
// installing a snapshot, not recovering. A node that an uncommitted change
// in its log removes still campaigns (it asks and counts the new
// configuration's voters): until that entry commits it may be the only
// one holding it, and the others may need it to lead (dissertation
// §4.2.2, Figure 4.6). It steps down once the removal commits.
func (c *Core) promotable() bool {
	return c.mayVote() && c.log.unstable.snapshot == nil && !c.rec.active
}

// mayVote reports whether this node is a voter in its membership, or in
// one that an uncommitted change in its log replaces.
func (c *Core) mayVote() bool {
	if c.isVoter(c.id) || c.mem.base.IsVoter(c.id) {
		return true
	}
	for _, ca := range c.mem.log {
		if ca.conf.IsVoter(c.id) {
			return true
		}
	}
	return false
}

func (c *Core) pastElectionTimeout() bool {
	return c.electionElapsed >= c.randomizedElectionTimeout
}

// tickElection is the follower and candidate clock.
func (c *Core) tickElection() {
	c.electionElapsed++
	if c.promotable() && c.pastElectionTimeout() {
		c.electionElapsed = 0
		c.hup(c.defaultCampaign())
	}
}

// tickHeartbeat is the leader clock.
func (c *Core) tickHeartbeat() {
	c.heartbeatElapsed++
	c.electionElapsed++
	for id, pr := range c.prs {
		if id != c.id {
			pr.tick()
		}
	}
	if c.electionElapsed >= c.electionTicks {
		c.electionElapsed = 0
		if c.checkQuorum && !c.checkQuorumActive() {
			c.logger.Warnf("raftlog: node %d steps down at term %d: quorum not active", c.id, c.term)
			c.becomeFollower(c.term, None)
			return
		}
		if c.leadTransferee != None {
			c.logger.Infof("raftlog: node %d aborts transfer to %d: timed out", c.id, c.leadTransferee)
			c.abortLeaderTransfer()
		}
	}
	if c.heartbeatElapsed >= c.heartbeatTicks {
		c.heartbeatElapsed = 0
		c.bcastHeartbeat()
	}
}

// checkQuorumActive reports whether a quorum (this node included) was
// heard from within the last election timeout.
func (c *Core) checkQuorumActive() bool {
	return c.voters.agree(func(id uint64) bool {
		return id == c.id || c.recentlyActive(c.prs[id])
	})
}

// recentlyActive reports whether a leader heard from the peer of pr within
// the last election timeout (ElectionTicks ticks).
func (c *Core) recentlyActive(pr *progress) bool { return pr.idleTicks < c.electionTicks }

func (c *Core) defaultCampaign() campaignKind {
	if c.preVote {
		return campaignPreElection
	}
	return campaignElection
}

func (c *Core) abortLeaderTransfer() { c.leadTransferee = None }

// Tick advances the logical clock by one tick.
func (c *Core) Tick() { c.tick() }
