package raftlog

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

// FuzzForgedMessages feeds arbitrary messages, from arbitrary members in
// arbitrary order, into a running 3-node in-memory cluster that also
// elects, replicates and ticks. Every message the validator accepts is
// stepped; one it refuses must be refused by Step as well and change
// nothing. After every operation each node's own invariants must hold:
// no panic, applied <= commit <= last index, its term never decreases, an
// entry it has committed never changes. Cluster-wide safety cannot hold
// against forged but well-formed messages from a member (keeping strangers
// out is the transport's job), so it is not checked.
//
// The input is a little program (see forgeOp); the seeds include the two
// frames of issue 12: a heartbeat of term 2^64-1, and an AppendEntries at
// the current term whose one entry claims index 1, below the commit index.
// Run it longer with:
//
//	go test ./raftlog -run '^$' -fuzz FuzzForgedMessages -fuzztime 10m
func FuzzForgedMessages(f *testing.F) {
	for _, s := range forgedSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		runForged(t, prog)
	})
}

// Fuzz program operations, one byte each, followed by their arguments.
const (
	opTickAll  = iota // every node ticks once
	opTickOne         // node: ticks once
	opDeliver         // handle every Ready, deliver what was queued
	opPropose         // the leader (if any) proposes a byte
	opForge           // a message built from the next bytes, relative to its target's state
	opRaw             // length byte, then MarshalMessage bytes
	opCampaign        // node: campaigns
	numForgeOps
)

// maxForgedOps bounds one program's work.
const maxForgedOps = 400

var networkTypes = []MessageType{MsgApp, MsgAppResp, MsgVote, MsgVoteResp, MsgPreVote, MsgPreVoteResp,
	MsgHeartbeat, MsgHeartbeatResp, MsgSnap, MsgTransferLeader, MsgTimeoutNow, MsgReadIndex, MsgReadIndexResp,
	MsgHup, MsgProp, 0, 99}

// progReader reads a fuzz program; past its end it yields zeros.
type progReader struct {
	b   []byte
	off int
}

func (r *progReader) more() bool { return r.off < len(r.b) }

func (r *progReader) byte() byte {
	if r.off >= len(r.b) {
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *progReader) bytes(n int) []byte {
	n = min(n, len(r.b)-r.off)
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

// nodeWatch is what the fuzz checker remembers of one node.
type nodeWatch struct {
	term      uint64
	committed map[uint64]uint64 // index → term of every entry seen committed and still in the log
}

func forgedNetwork(t testing.TB) *network {
	n := newNetwork(t, 1, []uint64{1, 2, 3}, func(c *Config) {
		c.PreVote, c.CheckQuorum = true, true
		c.MaxInflightMsgs = 8
	})
	n.manualSnapshotReports = false
	return n
}

func runForged(t *testing.T, prog []byte) {
	n := forgedNetwork(t)
	watch := map[uint64]*nodeWatch{}
	for _, id := range n.ids {
		watch[id] = &nodeWatch{committed: map[uint64]uint64{}}
	}
	r := &progReader{b: prog}
	for op := 0; r.more() && op < maxForgedOps; op++ {
		code := r.byte() % numForgeOps
		switch code {
		case opTickAll:
			for _, id := range n.ids {
				n.core(id).Tick()
			}
		case opTickOne:
			n.core(n.ids[int(r.byte())%len(n.ids)]).Tick()
		case opDeliver:
			for _, id := range n.ids {
				n.persist(id)
			}
			n.deliver()
		case opPropose:
			if l := n.leader(); l != None {
				_ = n.core(l).Propose([]byte{'p', r.byte()})
			}
		case opForge:
			stepForged(t, n, forgeMessage(n, r))
		case opRaw:
			m, err := UnmarshalMessage(r.bytes(int(r.byte())))
			if err == nil {
				stepForged(t, n, m)
			}
		case opCampaign:
			_ = n.core(n.ids[int(r.byte())%len(n.ids)]).Campaign()
		}
		checkForgedInvariants(t, n, watch, op)
	}
}

// stepForged delivers m to its addressee if the validator accepts it, and
// otherwise checks that Step refuses it too.
func stepForged(t *testing.T, n *network, m Message) {
	to, ok := n.nodes[m.To]
	if !ok {
		return
	}
	if m.Type.IsLocal() || ValidateSender(m, m.To, n.ids) != nil {
		return // the transport drops it before the core
	}
	if err := ValidateMessage(m); err != nil {
		if !fromNetwork(m) {
			return // looks like a local call to Step; only the transport can drop it
		}
		before := to.core.Status()
		if serr := to.core.Step(m); !errors.Is(serr, ErrInvalidMessage) {
			t.Fatalf("Step of %+v, which the validator refuses (%v), returned %v", m, err, serr)
		}
		if after := to.core.Status(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("refused %+v changed node %d: %+v → %+v", m, m.To, before, after)
		}
		return
	}
	if err := to.core.Step(m); err != nil && !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("Step(%+v) on node %d: %v", m, m.To, err)
	}
}

// forgeMessage builds a message whose fields are near its target's state
// (where bugs live) or extreme, as the program says.
func forgeMessage(n *network, r *progReader) Message {
	typ := networkTypes[int(r.byte())%len(networkTypes)]
	from := n.ids[int(r.byte())%len(n.ids)]
	to := n.ids[int(r.byte())%len(n.ids)]
	st := n.core(to).Status()
	l := n.core(to).log
	near := func(base uint64) uint64 {
		switch b := r.byte(); b {
		case 250:
			return MaxTerm
		case 251:
			return MaxTerm + 1
		case 252:
			return math.MaxUint64
		case 253:
			return 0
		default:
			d := uint64(b % 8)
			if base+4 < d {
				return 0
			}
			return base + d - 4 + 4*uint64(b/8%2)
		}
	}
	m := Message{Type: typ, From: from, To: to}
	m.Term = near(st.Term)
	idxBase := st.LastIndex
	if r.byte()%2 == 0 {
		idxBase = st.Commit
	}
	m.Index = near(idxBase)
	m.LogTerm = l.termOrZero(m.Index)
	if b := r.byte(); b%4 == 0 {
		m.LogTerm = near(m.LogTerm)
	}
	m.Commit = near(st.Commit)
	flags := r.byte()
	m.Reject = flags&1 != 0
	if flags&2 != 0 {
		m.RejectHint = near(m.Index)
	}
	if flags&4 != 0 {
		m.Context = []byte{r.byte(), r.byte()}
	}
	if flags&8 != 0 {
		m.Snapshot = SnapshotMeta{Index: near(st.Commit), Term: near(st.Term), Conf: ConfState{Voters: []uint64{1, 2, 3}}}
	}
	if typ == MsgApp {
		k := int(r.byte() % 5)
		term := max(m.LogTerm, 1)
		for i := range k {
			e := Entry{Index: m.Index + 1 + uint64(i), Term: term, Type: EntryNormal, Data: []byte{'f', byte(i)}}
			switch b := r.byte(); {
			case b%7 == 0:
				term = min(term+1, m.Term)
				e.Term = term
			case b%11 == 0:
				e.Index = near(st.Commit) // out of sequence
			case b%13 == 0:
				e.Term = near(term)
			}
			m.Entries = append(m.Entries, e)
		}
	}
	if flags&16 != 0 {
		// The fields the type does not carry are left as they are; otherwise
		// clear them, so that most forged messages pass the validator.
		return m
	}
	return tidy(m)
}

// tidy zeroes the fields m's type never carries.
func tidy(m Message) Message {
	keep := Message{Type: m.Type, From: m.From, To: m.To, Term: m.Term}
	switch m.Type {
	case MsgApp:
		keep.Index, keep.LogTerm, keep.Entries, keep.Commit = m.Index, m.LogTerm, m.Entries, m.Commit
	case MsgAppResp:
		keep.Index, keep.Reject, keep.Commit = m.Index, m.Reject, m.Commit
		if m.Reject {
			keep.LogTerm, keep.RejectHint = m.LogTerm, min(m.RejectHint, m.Index)
		}
	case MsgVote, MsgPreVote:
		keep.Index, keep.LogTerm = m.Index, m.LogTerm
	case MsgVoteResp, MsgPreVoteResp:
		keep.Reject = m.Reject
	case MsgHeartbeat, MsgHeartbeatResp:
		keep.Commit, keep.Context = m.Commit, m.Context
	case MsgSnap:
		keep.Snapshot = m.Snapshot
	case MsgReadIndex:
		keep.Term, keep.Context = 0, m.Context
	case MsgReadIndexResp:
		keep.Index, keep.Context = m.Index, m.Context
	}
	return keep
}

// checkForgedInvariants checks every node's own invariants.
func checkForgedInvariants(t *testing.T, n *network, watch map[uint64]*nodeWatch, op int) {
	for _, id := range n.ids {
		c := n.core(id)
		st := c.Status()
		w := watch[id]
		if st.Applied > st.Commit || st.Commit > st.LastIndex {
			t.Fatalf("op %d: node %d: applied %d, commit %d, last index %d out of order", op, id, st.Applied, st.Commit, st.LastIndex)
		}
		if st.Term < w.term {
			t.Fatalf("op %d: node %d: term went from %d down to %d", op, id, w.term, st.Term)
		}
		if st.Term > MaxTerm {
			t.Fatalf("op %d: node %d: term %d above %d", op, id, st.Term, MaxTerm)
		}
		w.term = st.Term
		first := c.log.firstIndex()
		for i, term := range w.committed {
			if i < first {
				delete(w.committed, i) // compacted or replaced by a snapshot
				continue
			}
			if got := c.log.termOrZero(i); got != term {
				t.Fatalf("op %d: node %d: committed entry %d changed from term %d to %d", op, id, i, term, got)
			}
		}
		for i := max(first, st.Commit-min(st.Commit, 64)); i <= st.Commit && i > 0; i++ {
			if _, ok := w.committed[i]; !ok {
				w.committed[i] = c.log.termOrZero(i)
			}
		}
	}
}

// forgedSeeds are programs that elect node 1, commit 32 entries, then send
// one of the frames of issue 12 and let the cluster run on.
func forgedSeeds() [][]byte {
	prefix := []byte{opCampaign, 0}
	for range 6 {
		prefix = append(prefix, opDeliver)
	}
	for i := range 31 {
		prefix = append(prefix, opPropose, byte(i), opDeliver, opDeliver, opDeliver)
	}
	for range 4 {
		prefix = append(prefix, opTickAll, opDeliver, opDeliver)
	}
	raw := func(m Message) []byte {
		b := MarshalMessage(m)
		return append([]byte{opRaw, byte(len(b))}, b...)
	}
	var suffix []byte
	for range 80 {
		suffix = append(suffix, opTickAll, opDeliver, opDeliver)
	}
	seed := func(ms ...Message) []byte {
		s := append([]byte(nil), prefix...)
		for _, m := range ms {
			s = append(s, raw(m)...)
		}
		return append(s, suffix...)
	}
	return [][]byte{
		// Finding 1: a heartbeat of term 2^64-1 "from" node 1.
		seed(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: math.MaxUint64}),
		seed(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: MaxTerm}, Message{Type: MsgHeartbeat, From: 1, To: 3, Term: MaxTerm}),
		// Finding 2: AppendEntries at the leader's term whose one entry
		// claims index 1, below the commit index 32.
		seed(Message{Type: MsgApp, From: 1, To: 2, Term: 1, Index: 32, LogTerm: 1, Commit: 32,
			Entries: []Entry{{Index: 1, Term: 1, Type: EntryNormal, Data: []byte("forged")}}}),
		// An ack of an index the leader never sent.
		seed(Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 1 << 40}),
		// A heartbeat of term 2^40: moves terms, crashes nothing.
		seed(Message{Type: MsgHeartbeat, From: 3, To: 2, Term: 1 << 40, Commit: 1 << 40}),
	}
}
