package rafttest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"runtime/debug"
	"slices"

	"github.com/raftmq/raftmq/raftlog"
)

// Options configures one simulation run. Zero fields take the defaults named.
type Options struct {
	Seed  int64
	Nodes int // default 3
	Steps int // random events; default 2000
	// ElectionTicks is the cores' election timeout; default 10.
	ElectionTicks int
	// LivenessTicks bounds how long a healed cluster may take to elect a
	// leader and commit a proposal; default 30*ElectionTicks.
	LivenessTicks int
	// LivenessChecks is how many times during the run (evenly spaced, the
	// last at the end) the network is healed and liveness checked; default 2.
	LivenessChecks int

	// Wipes adds a fault: a node loses all its data and restarts in
	// recovering mode, one node at a time (clusters of 3 or more).
	Wipes bool
	// Membership mixes membership changes in: two spare nodes start empty
	// (as `serve --join` does) and leaders add them as learners, promote
	// learners and remove members (keeping three voters), one change at a
	// time. A removed node keeps running and never comes back. Needs 3
	// nodes or more; not with Wipes.
	Membership bool

	// forgetVotes makes the driver persist HardState without the vote: a
	// deliberately broken node for tests that the harness catches it.
	forgetVotes bool
	// loseTail makes a crash lose the node's last three persisted entries.
	loseTail bool
	// wipeAsVoter makes a wiped node restart as an ordinary voter, with no
	// recovering mode.
	wipeAsVoter bool
}

func (o *Options) setDefaults() {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Steps == 0 {
		o.Steps = 2000
	}
	if o.ElectionTicks == 0 {
		o.ElectionTicks = 10
	}
	if o.LivenessTicks == 0 {
		o.LivenessTicks = 30 * o.ElectionTicks
	}
	if o.LivenessChecks == 0 {
		o.LivenessChecks = 2
	}
}

// Stats counts what a run did, to show that a run exercised something.
type Stats struct {
	Steps, Ticks, Delivered, Lost, Proposals, Accepted, Reads, ReadStates int
	Validated                                                             int // messages that passed ValidateMessage and ValidateSender
	Crashes, Partitions, Compactions, Snapshots, Transfers, Campaigns     int
	Wipes                                                                 int
	ConfChanges                                                           int // membership changes a leader accepted
	Demotions                                                             int // recovering voters a leader demoted (decision 25), counted when first applied
	PendingWrites                                                         int // Readys whose write waited while the node kept stepping
	MidReadyCrashes                                                       int // crashes with such a write pending
	Committed                                                             uint64
	Terms                                                                 int // terms that had a leader
}

// Sim is one deterministic randomized run. Not safe for concurrent use.
type Sim struct {
	opts  Options
	rng   *rand.Rand
	cfg   raftlog.Config // template for every node's core
	nodes []*node
	ids   []uint64
	nw    *network
	chk   *Checker
	tr    trace
	step  int
	stats Stats

	profile    int
	events     []weightedEvent
	eventTotal int

	nextData uint64
	// demoted: indexes of demotions applied (one per index, however many
	// nodes apply it).
	demoted map[uint64]bool
	// reads[ctx] is the number of entries known committed when the read was
	// requested: its ReadState index may not be lower (linearizable reads).
	reads map[string]uint64
	// retired are ids removed by a change a leader accepted: never added
	// again (the change may be overwritten; the id stays retired).
	retired map[uint64]bool
	// liveData is the liveness proposal and liveIndex where it was applied.
	liveData  []byte
	liveIndex uint64
}

// New builds a simulation for opts. The seed picks the cores' options
// (PreVote, CheckQuorum, limits) and the network's failure rates.
func New(opts Options) *Sim {
	opts.setDefaults()
	rng := rand.New(rand.NewSource(opts.Seed))
	s := &Sim{opts: opts, rng: rng, chk: NewChecker(), reads: make(map[string]uint64), retired: make(map[uint64]bool), demoted: make(map[uint64]bool)}
	s.chk.Voters = opts.Nodes
	for i := range opts.Nodes {
		s.ids = append(s.ids, uint64(i+1))
	}
	voters := s.ids
	if opts.Membership {
		opts.Wipes = false
		s.ids = append(slices.Clone(s.ids), uint64(opts.Nodes+1), uint64(opts.Nodes+2))
	}
	pick := func(vs ...uint64) uint64 { return vs[rng.Intn(len(vs))] }
	s.cfg = raftlog.Config{
		Peers:                      voters,
		ElectionTicks:              opts.ElectionTicks,
		HeartbeatTicks:             1 + rng.Intn(3),
		PreVote:                    rng.Intn(2) == 0,
		CheckQuorum:                rng.Intn(2) == 0,
		MaxSizePerMsg:              pick(64, 1024, 1<<20),
		MaxInflightMsgs:            int(pick(1, 4, 64)),
		MaxUncommittedEntriesBytes: pick(0, 0, 4096),
		MaxCommittedSizePerReady:   pick(0, 0, 512),
	}
	s.profile = rng.Intn(numProfiles)
	s.events = eventTable(s.profile)
	if opts.Wipes && opts.Nodes >= 3 {
		s.events = append(s.events, weightedEvent{1, (*Sim).wipe})
	}
	if opts.Membership {
		s.events = append(s.events, weightedEvent{3, (*Sim).changeMembership})
	}
	for _, e := range s.events {
		s.eventTotal += e.weight
	}
	dropPct := [numProfiles]int{2, 8, 20}[s.profile]
	s.nw = newNetwork(rng, rng.Intn(dropPct), rng.Intn(5), rng.Intn(40))
	for _, id := range s.ids {
		s.nodes = append(s.nodes, &node{id: id, storage: raftlog.NewMemoryStorage(), forgetVotes: opts.forgetVotes,
			loseTail: opts.loseTail, wipeAsVoter: opts.wipeAsVoter, joining: int(id) > opts.Nodes,
			boot: raftlog.ConfState{Voters: voters}})
	}
	return s
}

// Describe names the seed and what it chose.
func (s *Sim) Describe() string {
	c := s.cfg
	return fmt.Sprintf("seed=%d nodes=%d steps=%d wipes=%v membership=%v profile=%s prevote=%v checkquorum=%v heartbeat=%d maxmsg=%d inflight=%d maxuncommitted=%d maxapply=%d drop=%d%% dup=%d%% reorder=%d%%",
		s.opts.Seed, s.opts.Nodes, s.opts.Steps, s.opts.Wipes, s.opts.Membership, profileNames[s.profile], c.PreVote, c.CheckQuorum, c.HeartbeatTicks, c.MaxSizePerMsg,
		c.MaxInflightMsgs, c.MaxUncommittedEntriesBytes, c.MaxCommittedSizePerReady,
		s.nw.dropPct, s.nw.dupPct, s.nw.reorderPct)
}

// Trace returns the last events, oldest first.
func (s *Sim) Trace() string { return s.tr.String() }

// Stats returns the run's counters.
func (s *Sim) Stats() Stats {
	st := s.stats
	st.Committed = s.chk.Committed()
	st.Terms = s.chk.Leaders()
	return st
}

// Run executes the steps, checking safety after each and liveness at the
// spaced heal points. A panic in the core is returned as ErrCore with its
// stack.
func (s *Sim) Run() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic at step %d: %v\n%s", ErrCore, s.step, r, debug.Stack())
		}
	}()
	for _, n := range s.nodes {
		if err := s.startNode(n); err != nil {
			return err
		}
	}
	every := max(1, s.opts.Steps/s.opts.LivenessChecks)
	for s.step = 1; s.step <= s.opts.Steps; s.step++ {
		s.stats.Steps++
		if err := s.randomEvent(); err != nil {
			return s.fail(err)
		}
		if err := s.check(); err != nil {
			return s.fail(err)
		}
		if s.step%every == 0 || s.step == s.opts.Steps {
			if err := s.checkLiveness(); err != nil {
				return s.fail(err)
			}
		}
	}
	return nil
}

func (s *Sim) fail(err error) error { return fmt.Errorf("step %d: %w", s.step, err) }

func (s *Sim) record(e event) {
	e.step = s.step
	s.tr.add(e)
}

func (s *Sim) startNode(n *node) error {
	cfg := s.cfg
	cfg.Rand = nodeRand(s.rng)
	if err := n.start(cfg); err != nil {
		return err
	}
	s.chk.Restart(n.id, n.applied)
	return nil
}

// check runs the per-step checks on every live node.
func (s *Sim) check() error {
	for _, n := range s.nodes {
		if n.up() {
			if err := s.chk.Status(n.core.Status()); err != nil {
				return err
			}
		}
	}
	return nil
}

// weightedEvent is one kind of event and how often it happens relative to
// the others.
type weightedEvent struct {
	weight int
	run    func(*Sim) error
}

// Fault profiles: each seed runs calm, normal or stormy, so some runs make
// long progress between faults and others pile faults on each other.
const (
	profileCalm = iota
	profileNormal
	profileStormy
	numProfiles
)

var profileNames = [numProfiles]string{"calm", "normal", "stormy"}

// eventTable returns the event weights for a fault profile.
func eventTable(profile int) []weightedEvent {
	fault := [numProfiles]int{1, 2, 6}[profile]
	return []weightedEvent{
		{20, (*Sim).tickAll},
		{4, (*Sim).tickOne},
		{40, (*Sim).deliverOne},
		{10, (*Sim).deliverBurst},
		{fault, (*Sim).dropOne},
		{25, (*Sim).readyOne},
		{8, (*Sim).propose},
		{2, (*Sim).read},
		{fault, (*Sim).partitionOrHeal},
		{fault, (*Sim).crash},
		{4, (*Sim).restart},
		{1, (*Sim).campaign},
		{1, (*Sim).transfer},
		{3, (*Sim).compact},
	}
}

func (s *Sim) randomEvent() error {
	r := s.rng.Intn(s.eventTotal)
	for _, e := range s.events {
		if r < e.weight {
			return e.run(s)
		}
		r -= e.weight
	}
	panic("rafttest: event weights do not add up")
}

func (s *Sim) upNodes() []*node {
	var up []*node
	for _, n := range s.nodes {
		if n.up() {
			up = append(up, n)
		}
	}
	return up
}

func (s *Sim) randomUp() *node {
	up := s.upNodes()
	if len(up) == 0 {
		return nil
	}
	return up[s.rng.Intn(len(up))]
}

func (s *Sim) leaders() []*node {
	var ls []*node
	for _, n := range s.nodes {
		if n.up() && n.core.Role() == raftlog.RoleLeader {
			ls = append(ls, n)
		}
	}
	return ls
}

func (s *Sim) tickAll() error {
	s.stats.Ticks++
	for _, n := range s.nodes {
		if n.up() {
			n.core.Tick()
		}
	}
	s.record(event{kind: "tick"})
	return nil
}

// tickOne ticks a single node: clocks drift apart.
func (s *Sim) tickOne() error {
	if n := s.randomUp(); n != nil {
		n.core.Tick()
		s.record(event{kind: "tick", node: n.id})
	}
	return nil
}

func (s *Sim) deliverOne() error {
	env, ok := s.nw.next(false)
	if !ok {
		return nil
	}
	return s.deliver(env, false)
}

// deliver hands env to its destination unless the network loses it. A MsgSnap
// is reported to its sender as done or failed, as the transport would.
func (s *Sim) deliver(env envelope, reliable bool) error {
	m, err := raftlog.UnmarshalMessage(env.data)
	if err != nil {
		return fmt.Errorf("%w: codec: a marshaled message does not decode: %w", ErrCore, err)
	}
	// Whatever a correct node sends, the receiving broker's validator must
	// let through: otherwise it would drop real traffic.
	if err := raftlog.ValidateMessage(m); err != nil {
		return fmt.Errorf("%w: %w", ErrRefusedTraffic, err)
	}
	if err := raftlog.ValidateSender(m, env.to, s.ids); err != nil {
		return fmt.Errorf("%w: %w", ErrRefusedTraffic, err)
	}
	s.stats.Validated++
	from, to := s.nodes[env.from-1], s.nodes[env.to-1]
	if s.nw.lost(env, reliable) || !to.up() {
		s.stats.Lost++
		s.record(event{kind: "lost", msg: summarize(m)})
		if from.up() && from.incarnation == env.fromIncarnation {
			if env.typ == raftlog.MsgSnap {
				from.core.ReportSnapshot(env.to, false)
			} else if s.rng.Intn(4) == 0 {
				from.core.ReportUnreachable(env.to)
			}
		}
		return nil
	}
	s.stats.Delivered++
	err = to.core.Step(m)
	s.record(event{kind: "deliver", msg: summarize(m), err: err})
	if env.typ == raftlog.MsgSnap && from.up() && from.incarnation == env.fromIncarnation {
		from.core.ReportSnapshot(env.to, true)
	}
	return nil
}

// deliverBurst delivers up to 8 messages: the network catches up.
func (s *Sim) deliverBurst() error {
	for range 1 + s.rng.Intn(8) {
		if err := s.deliverOne(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sim) dropOne() error {
	if env, ok := s.nw.dropRandom(); ok {
		s.stats.Lost++
		s.record(event{kind: "drop", node: env.from, arg: env.to})
		if from := s.nodes[env.from-1]; env.typ == raftlog.MsgSnap && from.up() && from.incarnation == env.fromIncarnation {
			from.core.ReportSnapshot(env.to, false)
		}
	}
	return nil
}

func (s *Sim) readyOne() error {
	var ready []*node
	for _, n := range s.nodes {
		if n.up() && (n.pending != nil || n.core.HasReady()) {
			ready = append(ready, n)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	return s.handleReady(ready[s.rng.Intn(len(ready))])
}

// handleReady finishes n's pending Ready, or begins a new one and, in a
// faulty profile, now and then leaves its write pending (the node keeps
// stepping; a crash meanwhile loses it).
func (s *Sim) handleReady(n *node) error {
	h := readyHooks{
		send: func(m raftlog.Message) error {
			if m.From != n.id || m.To == raftlog.None || m.To > uint64(len(s.nodes)) || m.To == n.id {
				return fmt.Errorf("%w: node %d emitted %v from %d to %d", ErrCore, n.id, m.Type, m.From, m.To)
			}
			if err := s.chk.Send(m); err != nil {
				return err
			}
			s.nw.send(m, n.incarnation)
			return nil
		},
		installed: func(raftlog.SnapshotMeta) { s.stats.Snapshots++ },
		applied: func(e raftlog.Entry) {
			if s.liveData != nil && s.liveIndex == 0 && string(e.Data) == string(s.liveData) {
				s.liveIndex = e.Index
			}
			if e.Type == raftlog.EntryConfChange && !s.demoted[e.Index] {
				if cc, err := raftlog.UnmarshalConfChange(e.Data); err == nil && cc.Type == raftlog.ConfDemote {
					s.demoted[e.Index] = true
					s.stats.Demotions++
				}
			}
		},
		readState: s.checkReadState,
	}
	if n.pending == nil {
		if err := n.beginReady(h); err != nil {
			s.record(event{kind: "ready", node: n.id, arg: n.applied, err: err})
			return err
		}
		// Not while liveness is checked (the cluster is to settle), and not
		// with a snapshot to install.
		if s.profile != 0 && s.liveData == nil && n.pending.Snapshot.IsEmpty() && s.rng.Intn(6) == 0 {
			s.stats.PendingWrites++
			s.record(event{kind: "ready-sent", node: n.id, arg: n.applied})
			return nil
		}
	}
	err := n.finishReady(s.chk, h)
	s.record(event{kind: "ready", node: n.id, arg: n.applied, err: err})
	return err
}

// checkReadState checks that a read index is not below anything committed
// before the read was requested.
func (s *Sim) checkReadState(rs raftlog.ReadState) error {
	s.stats.ReadStates++
	floor, ok := s.reads[string(rs.Context)]
	if !ok {
		return fmt.Errorf("%w: ReadState for context %x that was never requested", ErrCore, rs.Context)
	}
	if rs.Index < floor {
		return fmt.Errorf("%w: read index %d for context %x; %d entries were applied before the request",
			ErrStaleRead, rs.Index, rs.Context, floor)
	}
	return nil
}

func (s *Sim) newData() []byte {
	s.nextData++
	b := make([]byte, 8+s.rng.Intn(64))
	binary.BigEndian.PutUint64(b, s.nextData)
	return b
}

// propose sends a command to a leader, or to any node (which must refuse)
// when there is none.
func (s *Sim) propose() error {
	var n *node
	if ls := s.leaders(); len(ls) > 0 {
		n = ls[s.rng.Intn(len(ls))]
	} else if n = s.randomUp(); n == nil {
		return nil
	}
	s.stats.Proposals++
	var err error
	if k := s.rng.Intn(4); k == 0 {
		batch := make([][]byte, 1+s.rng.Intn(3))
		for i := range batch {
			batch[i] = s.newData()
		}
		err = n.core.ProposeBatch(batch)
	} else {
		err = n.core.Propose(s.newData())
	}
	s.record(event{kind: "propose", node: n.id, err: err})
	switch {
	case err == nil:
		s.stats.Accepted++
	case !errors.Is(err, raftlog.ErrProposalDropped):
		return fmt.Errorf("%w: node %d Propose: %w", ErrCore, n.id, err)
	}
	return nil
}

func (s *Sim) read() error {
	n := s.randomUp()
	if n == nil {
		return nil
	}
	s.stats.Reads++
	ctx := s.newData()[:8]
	s.reads[string(ctx)] = s.chk.Committed()
	n.core.ReadIndex(ctx)
	s.record(event{kind: "readindex", node: n.id, arg: s.nextData})
	return nil
}

func (s *Sim) partitionOrHeal() error {
	if s.nw.partitioned() {
		s.nw.heal()
		s.record(event{kind: "heal"})
		return nil
	}
	s.stats.Partitions++
	side := make(map[uint64]bool)
	oneWay := false
	switch s.rng.Intn(3) {
	case 0: // isolate one node
		side[s.ids[s.rng.Intn(len(s.ids))]] = true
	case 1: // one node cannot send
		side[s.ids[s.rng.Intn(len(s.ids))]] = true
		oneWay = true
	default: // random split
		for _, id := range s.ids {
			side[id] = s.rng.Intn(2) == 0
		}
	}
	s.nw.partition(s.ids, side, oneWay)
	var mask uint64
	for id, in := range side {
		if in {
			mask |= 1 << id
		}
	}
	kind := "partition"
	if oneWay {
		kind = "mute"
	}
	s.record(event{kind: kind, arg: mask})
	return nil
}

// crash stops a node; half the time its state machine is lost too.
func (s *Sim) crash() error {
	n := s.randomUp()
	if n == nil {
		return nil
	}
	s.stats.Crashes++
	if n.pending != nil {
		s.stats.MidReadyCrashes++
	}
	keep := s.rng.Intn(2) == 0
	n.crash(keep)
	s.record(event{kind: "crash", node: n.id, arg: n.applied})
	return nil
}

func (s *Sim) restart() error {
	var down []*node
	for _, n := range s.nodes {
		if !n.up() {
			down = append(down, n)
		}
	}
	if len(down) == 0 {
		return nil
	}
	n := down[s.rng.Intn(len(down))]
	s.record(event{kind: "restart", node: n.id, arg: n.applied})
	return s.startNode(n)
}

func (s *Sim) campaign() error {
	n := s.randomUp()
	if n == nil {
		return nil
	}
	s.stats.Campaigns++
	err := n.core.Campaign()
	s.record(event{kind: "campaign", node: n.id, err: err})
	return nil
}

func (s *Sim) transfer() error {
	ls := s.leaders()
	if len(ls) == 0 {
		return nil
	}
	n := ls[s.rng.Intn(len(ls))]
	to := s.ids[s.rng.Intn(len(s.ids))]
	s.stats.Transfers++
	n.core.TransferLeadership(to)
	s.record(event{kind: "transfer", node: n.id, arg: to})
	return nil
}

// compact drops a node's log up to (nearly) its applied index, so lagging
// followers need a snapshot.
func (s *Sim) compact() error {
	n := s.randomUp()
	if n == nil {
		return nil
	}
	first, err := n.storage.FirstIndex()
	if err != nil {
		return fmt.Errorf("%w: node %d FirstIndex: %w", ErrCore, n.id, err)
	}
	if n.applied < first+4 {
		return nil
	}
	idx := n.applied - uint64(s.rng.Intn(4))
	// The snapshot carries the membership as of its index, as the broker's
	// (taken at its applied index) does.
	if _, err := n.storage.CreateSnapshot(idx, n.confAt(idx)); err != nil {
		return fmt.Errorf("%w: node %d CreateSnapshot(%d): %w", ErrCore, n.id, idx, err)
	}
	if err := n.storage.Compact(idx); err != nil {
		return fmt.Errorf("%w: node %d Compact(%d): %w", ErrCore, n.id, idx, err)
	}
	s.stats.Compactions++
	s.record(event{kind: "compact", node: n.id, arg: idx})
	return nil
}

// wipe loses one node's data (running or down) and restarts it in
// recovering mode, unless a node is already recovering or has an empty
// log: a majority that lost its data cannot be repaired, so operators
// repair one node at a time, and a node with an empty log that hears of
// commits takes itself for one that lost its data (decision 9's blind
// spot for a node that is merely new), persisted as the broker does.
//
// Nor while any node's log shows a learner: in a run without membership
// changes only a demotion (decision 25) makes one, and the repair of the
// node it demoted is not over until it is promoted back. Meanwhile the
// cluster runs with one voter fewer, and a second wipe could take the
// last quorum (the operator's rule: one node at a time, until `member
// list` shows every voter again).
func (s *Sim) wipe() error {
	for _, n := range s.nodes {
		if last, _ := n.storage.LastIndex(); n.recovering || last == 0 {
			return nil
		}
		if n.core != nil && len(n.core.Conf().Learners) > 0 && !s.opts.Membership {
			return nil
		}
	}
	n := s.nodes[s.rng.Intn(len(s.nodes))]
	s.stats.Wipes++
	n.wipe(s.ids)
	s.chk.Wipe(n.id)
	s.record(event{kind: "wipe", node: n.id})
	return s.startNode(n)
}

// changeMembership has a leader propose one membership change: add a
// spare node that was never a member as a learner, promote a learner, or
// remove a member (never the last voter). The core refuses a change while
// another is uncommitted, a promotion of a learner that lags, and
// nonsense; the event proposes such changes too.
func (s *Sim) changeMembership() error {
	ls := s.leaders()
	if len(ls) == 0 {
		return nil
	}
	n := ls[s.rng.Intn(len(ls))]
	conf := n.core.Conf()
	id := s.ids[s.rng.Intn(len(s.ids))]
	var cc raftlog.ConfChange
	switch {
	case !conf.IsMember(id) && !s.retired[id]:
		cc = raftlog.ConfChange{Type: raftlog.ConfAddLearner, ID: id}
	case conf.IsLearner(id) && s.rng.Intn(3) > 0:
		cc = raftlog.ConfChange{Type: raftlog.ConfPromote, ID: id}
	default:
		cc = raftlog.ConfChange{Type: raftlog.ConfRemove, ID: id}
		// A configuration of two voters with one in recovering mode (a
		// node that started empty and has not caught up) cannot elect
		// once its leader is lost: the recovering voter grants no vote.
		// That holds for a static two-node cluster too (docs/decisions.md,
		// 21). Runs keep three voters so that the liveness checks stay
		// meaningful.
		if conf.IsVoter(id) && len(conf.Voters) <= 3 {
			return nil
		}
	}
	err := n.core.ProposeConfChange(cc)
	s.record(event{kind: "conf-" + cc.Type.String(), node: n.id, arg: id, err: err})
	switch {
	case err == nil:
		s.stats.ConfChanges++
		// Commit-durability needs a majority of the configuration that
		// committed; the smallest one so far is a bound for all.
		if after := n.core.Conf(); len(after.Voters) < s.chk.Voters {
			s.chk.Voters = len(after.Voters)
		}
		if cc.Type == raftlog.ConfRemove {
			// Removed ids never come back (their data would be old).
			s.retired[id] = true
		}
	case !errors.Is(err, raftlog.ErrBadConfChange) && !errors.Is(err, raftlog.ErrProposalDropped):
		return fmt.Errorf("%w: node %d ProposeConfChange(%v %d): %w", ErrCore, n.id, cc.Type, id, err)
	}
	return nil
}
