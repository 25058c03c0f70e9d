package rafttest

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/raftmq/raftmq/raftlog"
)

// Checker verifies Raft's safety properties over a run, fed by the
// observations a driver makes: what each node persisted, applied and reports
// in its Status. Each method returns an error wrapping one of the Err...
// sentinels the moment a property breaks. A Checker holds the whole history
// in compressed form (one prefix hash per log position), so a check costs
// O(new entries), not O(log length).
//
// Not safe for concurrent use; one Sim owns one Checker.
type Checker struct {
	// leaders[term] is the one node seen leading term, over the whole run.
	leaders map[uint64]uint64
	// prefixes[(index, term)] is the hash of the log prefix ending at that
	// entry, as first seen in any persisted log. By log matching every later
	// sighting of the same (index, term) must have the same prefix.
	prefixes map[entryID]uint64
	// committed[i-1] describes the entry applied at index i. Invariant:
	// contiguous from index 1, because nodes apply in order from 1 or from a
	// snapshot of a committed index.
	committed []committedEntry
	nodes     map[uint64]*nodeState
	// votes[{id, term}] is the vote node id persisted in term, kept across
	// wipes: a node that lost its data must still never vote twice in a term.
	votes map[[2]uint64]uint64
	// Voters is the cluster size; when set, Status checks that a new
	// commit index is persisted on a quorum.
	Voters int
	// lostHigh[id] is the last index node id had persisted when it was
	// wiped: acks it sent before the wipe were real, so the quorum check
	// still counts them for commit indexes reported later.
	lostHigh map[uint64]uint64
}

type entryID struct{ index, term uint64 }

type committedEntry struct {
	term   uint64
	prefix uint64 // prefix hash through this entry
	// seenTerm is the applying node's term when the entry was first seen
	// applied: it was committed in a term <= seenTerm, so every leader of a
	// term >= seenTerm must hold it.
	seenTerm uint64
	node     uint64 // first node seen applying it, for messages
}

// nodeState is what the checker knows of one node.
type nodeState struct {
	// Persisted log: entries (base, base+len(hashes)]; base is the snapshot
	// index, baseHash the prefix hash through it.
	base     uint64
	baseHash uint64
	hashes   []uint64
	terms    []uint64

	hard    raftlog.HardState // last persisted
	applied uint64            // last applied index, this incarnation
	commit  uint64            // highest commit seen, this incarnation
	term    uint64            // floor for Status().Term
}

// NewChecker returns a Checker with an empty history.
func NewChecker() *Checker {
	return &Checker{
		leaders:  make(map[uint64]uint64),
		prefixes: make(map[entryID]uint64),
		nodes:    make(map[uint64]*nodeState),
		votes:    make(map[[2]uint64]uint64),
		lostHigh: make(map[uint64]uint64),
	}
}

func (c *Checker) node(id uint64) *nodeState {
	n, ok := c.nodes[id]
	if !ok {
		n = &nodeState{}
		c.nodes[id] = n
	}
	return n
}

// lastIndex is the index of the node's last persisted entry.
func (n *nodeState) lastIndex() uint64 { return n.base + uint64(len(n.hashes)) }

// prefixAt is the prefix hash through index i, which must be in
// [base, lastIndex()].
func (n *nodeState) prefixAt(i uint64) uint64 {
	if i == n.base {
		return n.baseHash
	}
	return n.hashes[i-n.base-1]
}

// chain extends the prefix hash prev by entry e.
func chain(prev uint64, e raftlog.Entry) uint64 {
	h := fnv.New64a()
	var b [8 * 3]byte
	binary.BigEndian.PutUint64(b[0:], prev)
	binary.BigEndian.PutUint64(b[8:], e.Index)
	binary.BigEndian.PutUint64(b[16:], e.Term)
	h.Write(b[:])
	h.Write([]byte{byte(e.Type)})
	h.Write(e.Data)
	return h.Sum64()
}

// PersistHardState records that node id durably wrote hs. The persisted term
// never decreases and a vote cast in a term never changes.
func (c *Checker) PersistHardState(id uint64, hs raftlog.HardState) error {
	n := c.node(id)
	prev := n.hard
	if hs.Term < prev.Term {
		return fmt.Errorf("%w: node %d persisted term %d after term %d", ErrTermRegressed, id, hs.Term, prev.Term)
	}
	if hs.Term == prev.Term && prev.Vote != raftlog.None && hs.Vote != prev.Vote {
		return fmt.Errorf("%w: node %d changed its vote in term %d from %d to %d",
			ErrElectionSafety, id, hs.Term, prev.Vote, hs.Vote)
	}
	if hs.Vote != raftlog.None {
		key := [2]uint64{id, hs.Term}
		if v, ok := c.votes[key]; ok && v != hs.Vote {
			return fmt.Errorf("%w: node %d voted for %d in term %d, and for %d before it lost its data",
				ErrElectionSafety, id, hs.Vote, hs.Term, v)
		}
		c.votes[key] = hs.Vote
	}
	n.hard = hs
	return nil
}

// PersistEntries records that node id durably appended ents (contiguous),
// replacing any entries it held from ents[0].Index on.
func (c *Checker) PersistEntries(id uint64, ents []raftlog.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	n := c.node(id)
	for i := 1; i < len(ents); i++ {
		if ents[i].Index != ents[i-1].Index+1 {
			return fmt.Errorf("%w: node %d persisted non-contiguous entries %d then %d",
				ErrLogMatching, id, ents[i-1].Index, ents[i].Index)
		}
	}
	// Entries inside the snapshot are committed: they must match, and are
	// otherwise already represented by the snapshot.
	for len(ents) > 0 && ents[0].Index <= n.base {
		e := ents[0]
		if e.Index <= uint64(len(c.committed)) && c.committed[e.Index-1].term != e.Term {
			return fmt.Errorf("%w: node %d persisted entry %d/%d over its snapshot at %d; committed term is %d",
				ErrLogMatching, id, e.Index, e.Term, n.base, c.committed[e.Index-1].term)
		}
		ents = ents[1:]
	}
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].Index
	if first > n.lastIndex()+1 {
		return fmt.Errorf("%w: node %d persisted entry %d after its last index %d (gap)",
			ErrLogMatching, id, first, n.lastIndex())
	}
	keep := first - n.base - 1
	n.hashes, n.terms = n.hashes[:keep], n.terms[:keep]
	prev := n.prefixAt(first - 1)
	for _, e := range ents {
		if len(n.terms) > 0 && e.Term < n.terms[len(n.terms)-1] {
			return fmt.Errorf("%w: node %d persisted entry %d with term %d after term %d",
				ErrLogMatching, id, e.Index, e.Term, n.terms[len(n.terms)-1])
		}
		h := chain(prev, e)
		id2 := entryID{e.Index, e.Term}
		if seen, ok := c.prefixes[id2]; !ok {
			c.prefixes[id2] = h
		} else if seen != h {
			return fmt.Errorf("%w: node %d persisted entry %d/%d whose log prefix or data differs from an earlier log's",
				ErrLogMatching, id, e.Index, e.Term)
		}
		n.hashes = append(n.hashes, h)
		n.terms = append(n.terms, e.Term)
		prev = h
	}
	return nil
}

// InstallSnapshot records that node id reset its log and state machine to
// the snapshot meta, which must describe a committed index.
func (c *Checker) InstallSnapshot(id uint64, meta raftlog.SnapshotMeta) error {
	n := c.node(id)
	if meta.Index > uint64(len(c.committed)) {
		return fmt.Errorf("%w: node %d installed a snapshot at %d beyond the committed index %d",
			ErrStateMachineSafety, id, meta.Index, len(c.committed))
	}
	ce := c.committed[meta.Index-1]
	if ce.term != meta.Term {
		return fmt.Errorf("%w: node %d installed a snapshot at %d with term %d; the committed entry has term %d",
			ErrStateMachineSafety, id, meta.Index, meta.Term, ce.term)
	}
	n.base, n.baseHash = meta.Index, ce.prefix
	n.hashes, n.terms = n.hashes[:0], n.terms[:0]
	if meta.Index > n.applied {
		n.applied = meta.Index
	}
	return nil
}

// Apply records that node id, currently in term, applied e to its state
// machine. Nodes apply every index in order, and all agree on each index.
func (c *Checker) Apply(id, term uint64, e raftlog.Entry) error {
	n := c.node(id)
	if e.Index != n.applied+1 {
		return fmt.Errorf("%w: node %d applied index %d after %d", ErrStateMachineSafety, id, e.Index, n.applied)
	}
	if e.Index <= n.lastIndex() && e.Index > n.base && n.terms[e.Index-n.base-1] != e.Term {
		return fmt.Errorf("%w: node %d applied entry %d/%d but persisted term %d there",
			ErrStateMachineSafety, id, e.Index, e.Term, n.terms[e.Index-n.base-1])
	}
	if e.Index > n.lastIndex() {
		return fmt.Errorf("%w: node %d applied entry %d beyond its persisted last index %d",
			ErrStateMachineSafety, id, e.Index, n.lastIndex())
	}
	n.applied = e.Index
	switch {
	case e.Index <= uint64(len(c.committed)):
		ce := c.committed[e.Index-1]
		if ce.term != e.Term || ce.prefix != chain(c.prefixBefore(e.Index), e) {
			return fmt.Errorf("%w: node %d applied entry %d/%d but node %d applied a different entry %d/%d there",
				ErrStateMachineSafety, id, e.Index, e.Term, ce.node, e.Index, ce.term)
		}
	case e.Index == uint64(len(c.committed))+1:
		c.committed = append(c.committed, committedEntry{
			term: e.Term, prefix: chain(c.prefixBefore(e.Index), e), seenTerm: term, node: id,
		})
	default:
		panic(fmt.Sprintf("rafttest: node %d applied %d with only %d committed known", id, e.Index, len(c.committed)))
	}
	return nil
}

func (c *Checker) prefixBefore(i uint64) uint64 {
	if i <= 1 {
		return 0
	}
	return c.committed[i-2].prefix
}

// Restart records that node id restarted from its persisted state with
// applied entries kept by its state machine (0 if it lost them).
func (c *Checker) Restart(id, applied uint64) {
	n := c.node(id)
	n.applied = applied
	n.commit = 0
	n.term = n.hard.Term
}

// Wipe records that node id lost everything it had persisted and applied.
// Its votes stay on record.
func (c *Checker) Wipe(id uint64) {
	c.lostHigh[id] = max(c.lostHigh[id], c.node(id).lastIndex())
	c.nodes[id] = &nodeState{}
}

// Status checks what a live node reports after a step: term and commit
// never decrease, at most one leader per term, and a leader holds every
// entry committed before or in its term.
func (c *Checker) Status(st raftlog.Status) error {
	n := c.node(st.ID)
	if st.Commit > st.LastIndex {
		return fmt.Errorf("%w: node %d commit %d beyond its last index %d", ErrStatusInvariant, st.ID, st.Commit, st.LastIndex)
	}
	if st.Term < n.term {
		return fmt.Errorf("%w: node %d is in term %d after term %d", ErrTermRegressed, st.ID, st.Term, n.term)
	}
	n.term = st.Term
	if st.Commit < n.commit {
		return fmt.Errorf("%w: node %d commit %d after %d", ErrCommitRegressed, st.ID, st.Commit, n.commit)
	}
	if st.Role == raftlog.RoleLeader && c.Voters > 0 && len(st.Conf.Voters) > 0 && len(st.Conf.Voters) < c.Voters {
		// A leader's own changes (demoting a recovering voter, decision
		// 25) shrink the configuration too: the smallest one a leader
		// committed with is the bound.
		c.Voters = len(st.Conf.Voters)
	}
	if st.Commit > n.commit && c.Voters > 0 {
		// Committed means persisted on a quorum (a leader's own entries
		// count only once durable). Persisted logs only lose a committed
		// entry by a bug, so this holds whenever the index is first seen.
		durable := 0
		for id, o := range c.nodes {
			if o.lastIndex() >= st.Commit || c.lostHigh[id] >= st.Commit {
				durable++
			}
		}
		if durable < c.Voters/2+1 {
			return fmt.Errorf("%w: node %d reports commit %d; %d of %d nodes persisted that far",
				ErrCommitNotDurable, st.ID, st.Commit, durable, c.Voters)
		}
	}
	n.commit = st.Commit
	if st.Role != raftlog.RoleLeader {
		return nil
	}
	if other, ok := c.leaders[st.Term]; ok && other != st.ID {
		return fmt.Errorf("%w: nodes %d and %d both led term %d", ErrElectionSafety, other, st.ID, st.Term)
	}
	c.leaders[st.Term] = st.ID
	return c.checkLeaderComplete(st.ID, st.Term)
}

// checkLeaderComplete checks that leader id of term holds, in its persisted
// log, every entry known committed in a term <= term. (A leader's log at
// election time was persisted before it asked for votes.) Because committed
// entries form a prefix, comparing prefix hashes at the last such index
// covers them all.
func (c *Checker) checkLeaderComplete(id, term uint64) error {
	ci := uint64(len(c.committed))
	for ci > 0 && c.committed[ci-1].seenTerm > term {
		ci--
	}
	if ci == 0 {
		return nil
	}
	n := c.node(id)
	if ci <= n.base {
		return nil // inside its snapshot, which InstallSnapshot matched to the committed prefix
	}
	ce := c.committed[ci-1]
	if ci > n.lastIndex() {
		return fmt.Errorf("%w: leader %d of term %d has last index %d; entry %d/%d committed (applied by node %d in term %d)",
			ErrLeaderCompleteness, id, term, n.lastIndex(), ci, ce.term, ce.node, ce.seenTerm)
	}
	if n.prefixAt(ci) != ce.prefix {
		return fmt.Errorf("%w: leader %d of term %d holds %d/%d; entry %d/%d committed (applied by node %d in term %d)",
			ErrLeaderCompleteness, id, term, ci, n.terms[ci-n.base-1], ci, ce.term, ce.node, ce.seenTerm)
	}
	return nil
}

// Send checks a message node m.From is about to send against what it has
// persisted: its term (pre-votes excepted: they carry a future term that is
// never persisted), a granted vote, and the entries a successful append
// response acknowledges.
func (c *Checker) Send(m raftlog.Message) error {
	n := c.node(m.From)
	switch m.Type {
	case raftlog.MsgPreVote, raftlog.MsgPreVoteResp:
		return nil
	}
	if m.Term > n.hard.Term {
		return fmt.Errorf("%w: node %d sent %v with term %d; persisted term %d",
			ErrDurability, m.From, m.Type, m.Term, n.hard.Term)
	}
	switch {
	case m.Type == raftlog.MsgVoteResp && !m.Reject:
		// A vote superseded by a higher persisted term is safe: the node
		// can never vote in that term again.
		if n.hard.Term < m.Term || (n.hard.Term == m.Term && n.hard.Vote != m.To) {
			return fmt.Errorf("%w: node %d granted its term-%d vote to %d; persisted term %d vote %d",
				ErrDurability, m.From, m.Term, m.To, n.hard.Term, n.hard.Vote)
		}
	case m.Type == raftlog.MsgAppResp && !m.Reject && m.Term == n.hard.Term:
		// An ack of an older term may name entries that a newer leader's
		// append truncated before this Ready was persisted (etcd raft does
		// the same). That is safe: truncation proves a leader of a higher
		// term was elected without them, so no quorum of the older term can
		// commit them. Acks in the persisted term must be durable.
		if m.Index > n.lastIndex() {
			return fmt.Errorf("%w: node %d acknowledged index %d; persisted last index %d",
				ErrDurability, m.From, m.Index, n.lastIndex())
		}
	}
	return nil
}

// Committed is the number of entries known committed (applied by a node).
func (c *Checker) Committed() uint64 { return uint64(len(c.committed)) }

// CommittedTerm is the term of committed index i in [1, Committed()].
func (c *Checker) CommittedTerm(i uint64) uint64 { return c.committed[i-1].term }

// Leaders is the number of terms that had a leader.
func (c *Checker) Leaders() int { return len(c.leaders) }
