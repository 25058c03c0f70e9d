package raftlog

import "fmt"

// progressState is how a leader replicates to one follower.
type progressState uint8

const (
	// stateProbe: the leader does not know where the follower's log matches
	// and sends one MsgApp at a time, waiting for the answer (or a heartbeat
	// response) before the next.
	stateProbe progressState = iota
	// stateReplicate: the logs match up to Match; the leader streams
	// entries optimistically, at most MaxInflightMsgs messages unanswered.
	stateReplicate
	// stateSnapshot: the follower needs a snapshot; nothing else is sent
	// until the caller reports the snapshot's fate (ReportSnapshot).
	stateSnapshot
)

func (s progressState) String() string {
	return [...]string{"probe", "replicate", "snapshot"}[s]
}

// progress is a leader's view of one follower (etcd tracker.Progress).
//
// Invariant: match < next.
type progress struct {
	match, next uint64
	state       progressState
	// pendingSnapshot is the snapshot index sent in stateSnapshot.
	pendingSnapshot uint64
	// idleTicks counts the leader's ticks since it last heard from this
	// peer; neverHeard until the first answer in this term. The peer is
	// recently active while idleTicks < electionTicks (see
	// Core.recentlyActive): CheckQuorum, snapshots and Status use that one
	// notion.
	idleTicks int
	// probeSent: in stateProbe, a MsgApp is outstanding.
	probeSent bool
	// recovering and demoted are what the follower's last answer said
	// (Message.Recovering, Message.Demoted).
	recovering, demoted bool
	inflights           *inflights
}

// neverHeard is idleTicks of a peer not heard from in this term; tick
// saturates there.
const neverHeard = 1 << 30

func newProgress(next uint64, maxInflightMsgs int) *progress {
	return &progress{next: next, idleTicks: neverHeard, inflights: newInflights(maxInflightMsgs)}
}

// heard records a message from the peer.
func (p *progress) heard() { p.idleTicks = 0 }

// tick ages the last answer by one leader tick.
func (p *progress) tick() {
	if p.idleTicks < neverHeard {
		p.idleTicks++
	}
}

func (p *progress) reset(state progressState) {
	p.state = state
	p.probeSent = false
	p.pendingSnapshot = 0
	p.inflights.reset()
}

func (p *progress) becomeProbe() {
	if p.state == stateSnapshot {
		// Resume after the snapshot, or from match if it failed.
		pending := p.pendingSnapshot
		p.reset(stateProbe)
		p.next = max(p.match+1, pending+1)
		return
	}
	p.reset(stateProbe)
	p.next = p.match + 1
}

func (p *progress) becomeReplicate() {
	p.reset(stateReplicate)
	p.next = p.match + 1
}

func (p *progress) becomeSnapshot(snapIndex uint64) {
	p.reset(stateSnapshot)
	p.pendingSnapshot = snapIndex
}

// maybeUpdate records that the follower holds entries up to n. It reports
// whether match grew (false for a stale or repeated answer).
func (p *progress) maybeUpdate(n uint64) bool {
	updated := false
	if p.match < n {
		p.match = n
		updated = true
		p.probeSent = false
	}
	p.next = max(p.next, n+1)
	return updated
}

// sentEntries records a MsgApp whose last entry is lastIndex (0 entries:
// lastIndex is ignored).
func (p *progress) sentEntries(n int, lastIndex uint64) {
	switch p.state {
	case stateReplicate:
		if n > 0 {
			p.next = lastIndex + 1
			p.inflights.add(lastIndex)
		}
	case stateProbe:
		p.probeSent = true
	default:
		panic(fmt.Sprintf("raftlog: sending entries in progress state %v", p.state))
	}
}

// maybeDecrTo handles a rejection of the MsgApp whose preceding index was
// rejected; nextProbe is where the follower's hint says to try next. It
// reports false for a stale rejection.
func (p *progress) maybeDecrTo(rejected, nextProbe uint64) bool {
	if p.state == stateReplicate {
		if rejected <= p.match {
			return false // answers something older than what matched
		}
		p.next = p.match + 1
		return true
	}
	if p.next-1 != rejected {
		return false // not the probe we are waiting for
	}
	p.next = max(min(rejected, nextProbe), p.match+1, 1)
	p.probeSent = false
	return true
}

// isPaused reports whether the leader must hold back MsgApp to this peer.
func (p *progress) isPaused() bool {
	switch p.state {
	case stateProbe:
		return p.probeSent
	case stateReplicate:
		return p.inflights.full()
	default:
		return true
	}
}

func (p *progress) String() string {
	return fmt.Sprintf("%s match=%d next=%d inflight=%d", p.state, p.match, p.next, p.inflights.count)
}

// inflights is a ring of the last indexes of unanswered MsgApps.
type inflights struct {
	start, count int
	buf          []uint64 // len(buf) is the limit
}

func newInflights(limit int) *inflights { return &inflights{buf: make([]uint64, limit)} }

func (in *inflights) full() bool { return in.count == len(in.buf) }
func (in *inflights) reset()     { in.start, in.count = 0, 0 }

func (in *inflights) add(index uint64) {
	if in.full() {
		panic("raftlog: inflights add when full")
	}
	in.buf[(in.start+in.count)%len(in.buf)] = index
	in.count++
}

// freeLE frees every message whose last index is <= to.
func (in *inflights) freeLE(to uint64) {
	for in.count > 0 && in.buf[in.start] <= to {
		in.start = (in.start + 1) % len(in.buf)
		in.count--
	}
}

// freeFirstOne frees the oldest message (a heartbeat answered: the peer is
// alive, let one more MsgApp out).
func (in *inflights) freeFirstOne() {
	if in.count > 0 {
		in.start = (in.start + 1) % len(in.buf)
		in.count--
	}
}
