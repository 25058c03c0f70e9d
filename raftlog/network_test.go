package raftlog

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
)

// testNode is one member of a test network: the core, its durable storage
// and what it has applied.
type testNode struct {
	core    *Core
	storage *MemoryStorage
	cfg     Config
	// applied are the entries applied, in order, after appliedBase.
	applied     []Entry
	appliedBase uint64
	readStates  []ReadState
	snapshots   []SnapshotMeta
}

func (tn *testNode) appliedIndex() uint64 { return tn.appliedBase + uint64(len(tn.applied)) }

// network is a deterministic in-memory cluster: Ready batches are persisted
// to MemoryStorage, messages are queued and delivered in FIFO order, links
// can be cut and messages filtered.
type network struct {
	t     testing.TB
	seed  int64
	nodes map[uint64]*testNode
	ids   []uint64
	queue []Message
	// cut[{from,to}] drops messages on that link.
	cut map[[2]uint64]bool
	// filter may rewrite a message or drop it (false).
	filter func(m Message) (Message, bool)
	// onCut, when set, sees each message dropped by a cut link.
	onCut func(m Message)
	// sent counts delivered messages by type, for round-trip assertions.
	sent map[MessageType]int
	// rejects counts delivered MsgApp rejections.
	rejects int
	// manualSnapshotReports: the test calls ReportSnapshot itself. Otherwise
	// the network reports each MsgSnap's fate to its sender, as the broker's
	// snapshot streamer does.
	manualSnapshotReports bool
	// skipSafety turns off the O(log size) checks (benchmarks only).
	skipSafety bool
}

// newNetwork builds a cluster of ids with fresh storage. opt may adjust
// each node's config.
func newNetwork(t testing.TB, seed int64, ids []uint64, opt func(*Config)) *network {
	t.Helper()
	return newNetworkWithStorage(t, seed, ids, nil, opt)
}

// newNetworkWithStorage builds a cluster whose nodes start from the given
// storages (a fresh one for an id not in the map).
func newNetworkWithStorage(t testing.TB, seed int64, ids []uint64, storages map[uint64]*MemoryStorage, opt func(*Config)) *network {
	t.Helper()
	n := &network{t: t, seed: seed, nodes: map[uint64]*testNode{}, ids: ids,
		cut: map[[2]uint64]bool{}, sent: map[MessageType]int{}}
	for _, id := range ids {
		st := storages[id]
		if st == nil {
			st = NewMemoryStorage()
			// The broker records the membership it bootstraps with.
			st.SetConfState(ConfState{Voters: ids})
		}
		n.addNode(id, st, opt)
	}
	return n
}

func testConfig(id uint64, peers []uint64, st Storage, seed int64) Config {
	return Config{
		ID: id, Peers: peers, ElectionTicks: 10, HeartbeatTicks: 1, Storage: st,
		Rand: rand.New(rand.NewSource(seed*1000 + int64(id))), MaxSizePerMsg: 1 << 20,
		MaxInflightMsgs: 256,
	}
}

func (n *network) addNode(id uint64, st *MemoryStorage, opt func(*Config)) {
	n.t.Helper()
	cfg := testConfig(id, n.ids, st, n.seed)
	if opt != nil {
		opt(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		n.t.Fatalf("seed %d: New(%d): %v", n.seed, id, err)
	}
	n.nodes[id] = &testNode{core: c, storage: st, cfg: cfg}
}

func (n *network) core(id uint64) *Core { return n.nodes[id].core }

// join starts node id with an empty storage and no membership, as
// `serve --join` does, unless it is already in the network.
func (n *network) join(id uint64, opt func(*Config)) {
	n.t.Helper()
	if _, ok := n.nodes[id]; ok {
		return
	}
	n.ids = append(n.ids, id)
	n.addNode(id, NewMemoryStorage(), func(c *Config) {
		if opt != nil {
			opt(c)
		}
		c.Peers = nil
	})
}

// change proposes cc on node on and stabilizes.
func (n *network) change(on uint64, t ConfChangeType, id uint64) error {
	err := n.core(on).ProposeConfChange(ConfChange{Type: t, ID: id})
	n.stabilize()
	return err
}

// wipe replaces node id with a fresh one that lost all its data (the
// membership the broker bootstraps with excepted), as after an operator
// wiped its data directory; recovering says whether it starts in
// recovering mode. Messages in flight to it stay queued.
func (n *network) wipe(id uint64, recovering bool) {
	n.t.Helper()
	st := NewMemoryStorage()
	st.SetConfState(ConfState{Voters: n.ids})
	old := n.nodes[id].cfg
	n.addNode(id, st, func(c *Config) {
		c.PreVote, c.CheckQuorum = old.PreVote, old.CheckQuorum
		c.MaxSizePerMsg, c.MaxInflightMsgs = old.MaxSizePerMsg, old.MaxInflightMsgs
		c.Recovering = recovering
	})
}

// restart rebuilds node id from its storage alone: unstable entries and
// unsent messages are lost, as in a crash.
func (n *network) restart(id uint64) {
	n.t.Helper()
	old := n.nodes[id]
	cfg := old.cfg
	cfg.Applied = old.appliedIndex()
	cfg.Rand = rand.New(rand.NewSource(n.seed*1000 + int64(id) + 7))
	c, err := New(cfg)
	if err != nil {
		n.t.Fatalf("seed %d: restart %d: %v", n.seed, id, err)
	}
	old.core = c
	n.queue = slices.DeleteFunc(n.queue, func(m Message) bool { return m.To == id })
}

// persist handles node id's Ready batches until it has none.
func (n *network) persist(id uint64) bool {
	tn := n.nodes[id]
	did := false
	for tn.core.HasReady() {
		did = true
		rd := tn.core.Ready()
		if !rd.Snapshot.IsEmpty() {
			if err := tn.storage.ApplySnapshot(rd.Snapshot); err != nil {
				n.t.Fatalf("seed %d: node %d apply snapshot: %v", n.seed, id, err)
			}
			tn.snapshots = append(tn.snapshots, rd.Snapshot)
			tn.applied, tn.appliedBase = nil, rd.Snapshot.Index
		}
		if err := tn.storage.Append(rd.Entries); err != nil {
			n.t.Fatalf("seed %d: node %d append: %v", n.seed, id, err)
		}
		if !rd.HardState.IsEmpty() {
			_ = tn.storage.SetHardState(rd.HardState)
		}
		for _, m := range rd.Messages {
			// A forwarded MsgTransferLeader names the transferee in From.
			if (m.From != id && m.Type != MsgTransferLeader) || m.Term == 0 && m.Type != MsgReadIndex {
				n.t.Fatalf("seed %d: node %d emitted bad message %+v", n.seed, id, m)
			}
		}
		n.queue = append(n.queue, rd.Messages...)
		for _, e := range rd.CommittedEntries {
			if e.Index != tn.appliedIndex()+1 {
				n.t.Fatalf("seed %d: node %d applies %d after %d", n.seed, id, e.Index, tn.appliedIndex())
			}
			tn.applied = append(tn.applied, e)
			if e.Type == EntryConfChange {
				// The broker records the membership as it applies, so that
				// its snapshots carry it.
				cc, err := UnmarshalConfChange(e.Data)
				if err != nil {
					n.t.Fatalf("seed %d: node %d applies a bad change %d: %v", n.seed, id, e.Index, err)
				}
				tn.storage.SetConfState(cc.After)
			}
		}
		tn.readStates = append(tn.readStates, rd.ReadStates...)
		if rd.SoftState != nil {
			// The broker sets or clears its persisted recovering flag here.
			tn.cfg.Recovering = rd.SoftState.Recovering
		}
		tn.core.Advance(rd)
	}
	return did
}

// deliver sends every queued message once; new ones wait for the next call.
func (n *network) deliver() bool {
	msgs := n.queue
	n.queue = nil
	for _, m := range msgs {
		delivered := n.deliverOne(m)
		if m.Type == MsgSnap && !n.manualSnapshotReports {
			n.core(m.From).ReportSnapshot(m.To, delivered)
		}
	}
	return len(msgs) > 0
}

func (n *network) deliverOne(m Message) bool {
	if n.cut[[2]uint64{m.From, m.To}] {
		if n.onCut != nil {
			n.onCut(m)
		}
		return false
	}
	if n.filter != nil {
		var ok bool
		if m, ok = n.filter(m); !ok {
			return false
		}
	}
	to, ok := n.nodes[m.To]
	if !ok {
		return false
	}
	n.sent[m.Type]++
	if m.Type == MsgAppResp && m.Reject {
		n.rejects++
	}
	_ = to.core.Step(m)
	return true
}

// stabilize persists and delivers until nothing moves.
func (n *network) stabilize() {
	n.t.Helper()
	for i := 0; ; i++ {
		if i > 10000 {
			n.t.Fatalf("seed %d: network does not stabilize", n.seed)
		}
		moved := false
		for _, id := range n.ids {
			moved = n.persist(id) || moved
		}
		moved = n.deliver() || moved
		if !moved {
			if !n.skipSafety {
				n.checkSafety()
			}
			return
		}
	}
}

// tick advances every node's clock by one and stabilizes.
func (n *network) tick(k int, ids ...uint64) {
	if len(ids) == 0 {
		ids = n.ids
	}
	for range k {
		for _, id := range ids {
			n.core(id).Tick()
		}
		n.stabilize()
	}
}

// isolate cuts every link to and from id.
func (n *network) isolate(id uint64) {
	for _, o := range n.ids {
		if o != id {
			n.cut[[2]uint64{id, o}] = true
			n.cut[[2]uint64{o, id}] = true
		}
	}
}

func (n *network) heal() { n.cut = map[[2]uint64]bool{} }

// leader returns the single leader of the highest term, or None.
func (n *network) leader() uint64 {
	var lead, term uint64
	for _, id := range n.ids {
		c := n.core(id)
		if c.Role() == RoleLeader && c.term >= term {
			lead, term = id, c.term
		}
	}
	return lead
}

// elect makes id leader through a normal election.
func (n *network) elect(id uint64) {
	n.t.Helper()
	if err := n.core(id).Campaign(); err != nil {
		n.t.Fatalf("seed %d: campaign: %v", n.seed, err)
	}
	n.stabilize()
	if n.core(id).Role() != RoleLeader {
		n.t.Fatalf("seed %d: node %d not leader after campaign: %v", n.seed, id, n.core(id).Status())
	}
}

func (n *network) propose(id uint64, data string) {
	n.t.Helper()
	if err := n.core(id).Propose([]byte(data)); err != nil {
		n.t.Fatalf("seed %d: propose %q on %d: %v", n.seed, data, id, err)
	}
	n.stabilize()
}

// checkSafety asserts election safety (one leader per term) and state
// machine safety (no two nodes applied different entries at one index).
func (n *network) checkSafety() {
	n.t.Helper()
	leaders := map[uint64]uint64{}
	for _, id := range n.ids {
		c := n.core(id)
		if c.Role() != RoleLeader {
			continue
		}
		if other, ok := leaders[c.term]; ok && other != id {
			n.t.Fatalf("seed %d: two leaders in term %d: %d and %d", n.seed, c.term, other, id)
		}
		leaders[c.term] = id
	}
	byIndex := map[uint64]Entry{}
	for _, id := range n.ids {
		tn := n.nodes[id]
		for _, e := range tn.applied {
			if prev, ok := byIndex[e.Index]; ok && (prev.Term != e.Term || string(prev.Data) != string(e.Data)) {
				n.t.Fatalf("seed %d: node %d applied %d/%d %q, another applied %d/%d %q",
					n.seed, id, e.Index, e.Term, e.Data, prev.Index, prev.Term, prev.Data)
			}
			byIndex[e.Index] = e
		}
	}
}

// logTerms lists the terms of node id's whole log (durable and unstable),
// from index 1.
func (n *network) logTerms(id uint64) []uint64 {
	l := n.core(id).log
	var terms []uint64
	for i := l.firstIndex(); i <= l.lastIndex(); i++ {
		terms = append(terms, l.termOrZero(i))
	}
	return terms
}

// appliedData lists the Data of node id's applied normal entries.
func (n *network) appliedData(id uint64) []string {
	var out []string
	for _, e := range n.nodes[id].applied {
		if e.Type == EntryNormal {
			out = append(out, string(e.Data))
		}
	}
	return out
}

func (n *network) String() string {
	s := ""
	for _, id := range n.ids {
		st := n.core(id).Status()
		s += fmt.Sprintf("%d: %v term=%d lead=%d commit=%d applied=%d last=%d\n",
			id, st.Role, st.Term, st.Lead, st.Commit, st.Applied, st.LastIndex)
	}
	return s
}

// storageWithTerms returns a storage holding one entry per term in terms
// (index 1 first) and the given HardState term.
func storageWithTerms(terms []uint64, term uint64) *MemoryStorage {
	st := NewMemoryStorage()
	ents := make([]Entry, len(terms))
	for i, tm := range terms {
		ents[i] = Entry{Index: uint64(i + 1), Term: tm, Type: EntryNormal, Data: []byte(fmt.Sprintf("%d/%d", i+1, tm))}
	}
	_ = st.Append(ents)
	_ = st.SetHardState(HardState{Term: term})
	return st
}
