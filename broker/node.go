package broker

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/metrics"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/snapshot"
	"github.com/raftmq/raftmq/storage"
)

// state.db commits applied entries in groups (decision 4): a client is
// answered once its entry is committed in raft.db on a quorum and applied,
// and state.db catches up on disk within these bounds.
const (
	stateGroupEntries = 10000
	stateGroupBytes   = 4 << 20
	stateGroupDelay   = 100 * time.Millisecond
)

// node is the raft loop: the one goroutine that owns the raftlog core,
// raft.db, the ticker and the transport. state.db's writes belong to the
// applier (applier.go), which the loop hands committed entries to and
// hears results from. Everything else reaches the loop through channels.
type node struct {
	log   zerolog.Logger
	core  *raftlog.Core
	raft  logStore
	state *storage.StateDB // read here; written only by the applier
	trans transport
	reply *replier

	// applier applies committed entries off the loop (decision 24).
	// handed is the last index handed to it (membership changes up to it
	// are recorded in raft.db: applyChanges runs at hand-off), applied the
	// last index whose results the loop has taken (answered, waiters
	// woken, reads served). Invariant: applied <= handed <= commit.
	applier *applier
	handed  uint64
	applied uint64

	self uint64
	// addrs are the addresses of every node this one knows (members and
	// the cluster file's), members what raft.db records of changes, member
	// the leader's one membership change in progress (membership.go).
	addrs          map[uint64]config.Address
	members        storage.Members
	member         *pendingMember
	clientAddrs    map[uint64]string // raft id → client address, for not_leader hints
	tick           time.Duration
	electionTicks  int
	maxBatchBytes  uint64
	shutdownBudget time.Duration

	requestCh <-chan clientRequest
	stats     *stats
	status    *statusBox
	metrics   *metrics.Metrics
	disk      *diskGuard
	// lastLead is the leader the last SoftState named, to count changes.
	lastLead uint64

	// reqs holds the client requests taken and not yet answered.
	reqs *requests
	// waiters holds the long-polling GETs and RECEIVEs that found nothing
	// (decision 17); requestTimeout bounds each proposal of one.
	waiters        *waiters
	requestTimeout time.Duration
	// tickProposal is the proposal id of the expiry tick in flight (0:
	// none) and tickProposedAt when it was proposed (leasedelivery.go).
	tickProposal   uint64
	tickProposedAt time.Time
	// readied collects the topics applied entries readied a message in,
	// woken after Advance.
	readied []string

	// Snapshots (snapshotter.go, snapsend.go, install.go).
	store               *snapshot.Store
	clusterID           string
	dataDir             string
	snapshotEntries     uint64
	trailingEntries     uint64
	chunkBytes          int
	snapTiming          snapTiming
	rebuildMinFreeBytes int64
	// snapIndex is the newest snapshot recorded in raft.db: state.db's
	// durable applied index at the last compaction, or an installed
	// snapshot's index. Invariant: snapIndex <= state.DurableAppliedIndex().
	snapIndex uint64
	// snapDeferredUntil: no snapshot file or compact copy starts before
	// then (one failed or would not fit on the disk); snapDeferredLogged:
	// that was logged.
	snapDeferredUntil  time.Time
	snapDeferredLogged bool
	job                *snapshotJob
	snapWaiting        []replyTo // admin requests, answered at the next compaction
	// snapWanted holds the MsgSnaps of followers waiting for a snapshot
	// file (a jobSend); sendFile is the newest file written, while in use.
	snapWanted   map[uint64]raftlog.Message
	sendFile     *sendFile
	senders      map[uint64]*snapSender
	snapReportCh chan snapReport
	installCh    chan pendingInstall
	pending      *pendingInstall // received snapshot waiting for Ready.Snapshot
	snapWG       sync.WaitGroup  // senders and the receiver
}

// run drives the core until stop is closed, then stops gracefully. It
// returns an error if the node stopped itself because it could not go on
// safely.
func (n *node) run(stop <-chan struct{}) error {
	ticker := time.NewTicker(n.tick)
	defer ticker.Stop()
	recvStop := make(chan struct{})
	defer n.stopSnapshots(recvStop)
	rcv := &snapReceiver{store: n.store, trans: n.trans, clusterID: n.clusterID, self: n.self, dataDir: n.dataDir,
		log: n.log.With().Str("component", "snapshot").Logger(), installCh: n.installCh, diskFull: n.disk.Full}
	n.snapWG.Add(1)
	go func() {
		defer n.snapWG.Done()
		rcv.run(recvStop)
	}()
	n.publishStatus()
	for {
		var err error
		ticked := false
		select {
		case <-stop:
			return n.shutdown(ticker)
		case <-ticker.C:
			n.onTick()
			ticked = true
		case m := <-n.trans.Recv():
			n.step(m)
			n.drain()
		case cr := <-n.requestCh:
			n.handleRequests(cr)
			n.drain()
		case in := <-n.installCh:
			n.acceptInstall(in)
		case a := <-n.trans.Acks():
			n.routeAck(a)
		case from := <-n.trans.Removed():
			err = n.removedBy(from)
		case r := <-n.snapReportCh:
			n.snapshotReported(r)
		case res := <-n.jobDoneCh():
			err = n.snapshotDone(res)
		case <-n.applier.doneC():
			err = n.takeApplied()
		}
		if err == nil {
			err = n.processReady()
		}
		if err == nil {
			err = n.maybeSnapshot()
		}
		if err == nil && ticked {
			if err = n.raft.CompactStep(); err != nil {
				err = fmt.Errorf("%w: compact the log: %w", ErrStopped, err)
			}
		}
		if err != nil {
			n.failAll(wire.ErrInternal, "the broker stopped: "+err.Error()+"; the outcome of this request is unknown: retry with the same client_id and seq on another broker")
			return err
		}
		if ticked || n.statusChanged() {
			n.publishStatus()
		}
	}
}

// maxDrain bounds the peer messages and request batches one loop round
// takes before it builds a Ready.
const maxDrain = 4096

// drain steps every peer message and takes every client request already
// queued (at most maxDrain), so that one Ready, one raft.db transaction and
// one MsgApp per peer cover a burst, on the leader and on followers.
func (n *node) drain() {
	for i := 0; i < maxDrain; i++ {
		select {
		case m := <-n.trans.Recv():
			n.step(m)
		case cr := <-n.requestCh:
			n.handleRequests(cr)
		default:
			return
		}
	}
}

// onTick advances the core's clock, answers requests that timed out and
// ends the waits that are over.
func (n *node) onTick() {
	n.core.Tick()
	now := time.Now()
	n.expire(now)
	n.expireWaiters(now)
	n.maybeProposeExpiry(now)
	n.expireMember(now, n.handed)
}

// stopSnapshots ends the snapshot in progress, the transfers and the
// receiver, and waits for them: they use the stores the caller closes next.
func (n *node) stopSnapshots(recvStop chan struct{}) {
	n.cancelSnapshot()
	n.stopSenders()
	close(recvStop)
	n.snapWG.Wait()
	if n.pending != nil {
		os.Remove(n.pending.path)
		n.pending = nil
	}
}

// handleRequests takes cr and every request already queued behind it (up to
// maxBatchBytes) so that requests that arrive together are proposed
// together and share one fsync.
func (n *node) handleRequests(first clientRequest) {
	var batch [][]byte
	var ids []uint64
	var batchBytes uint64
	cr := first
	for {
		n.handleRequest(cr, &batch, &ids, &batchBytes)
		if batchBytes >= n.maxBatchBytes {
			break
		}
		var ok bool
		select {
		case cr, ok = <-n.requestCh:
		default:
		}
		if !ok {
			break
		}
	}
	n.proposeBatch(batch, ids)
}

// proposeBatch proposes the commands of the registered writes ids (in
// order) as one batch; if the core refuses (this node no longer leads),
// each of them is answered not_leader.
func (n *node) proposeBatch(batch [][]byte, ids []uint64) {
	if len(batch) == 0 {
		return
	}
	if err := n.core.ProposeBatch(batch); err != nil {
		for _, id := range ids {
			if w, ok := n.reqs.takeWrite(id); ok {
				n.answerNotLeader(w.route)
			}
		}
		return
	}
	n.stats.proposed.Add(uint64(len(batch)))
}

func (n *node) handleRequest(cr clientRequest, batch *[][]byte, ids *[]uint64, batchBytes *uint64) {
	if cr.req.Type == wire.TypeSnapshot {
		n.requestSnapshot(cr) // any node snapshots itself
		return
	}
	if cr.req.Type == wire.TypeMember {
		n.handleMember(cr)
		return
	}
	if n.core.Role() != raftlog.RoleLeader {
		n.answerNotLeader(cr.route)
		return
	}
	if !cr.req.Mutates() {
		n.startRead(cr)
		return
	}
	if cr.req.Method == wire.MethodPut && n.disk.Full() {
		// Pops and reads go on: they free space (compaction follows them).
		n.reply.send(cr.route, wire.ErrorResponse(wire.ErrDiskFull, n.disk.Reason()+
			"; puts and topic creation resume by themselves when space comes back (pops free space)"))
		return
	}
	if cr.req.Receipt != "" {
		if _, err := storage.ParseReceipt(cr.req.Receipt); err != nil {
			n.reply.send(cr.route, wire.ErrorResponse(wire.ErrBadRequest, "receipt is not one a RECEIVE answered: "+err.Error()))
			return
		}
	}
	if cr.req.WaitMs > 0 && cr.waiter == nil {
		cr.waiter = n.waiters.arrive(cr, cr.arrived)
	}
	id := n.reqs.addWrite(cr)
	data := storage.EncodeCommand(commandOf(cr.req, id, time.Now()))
	*batch = append(*batch, data)
	*ids = append(*ids, id)
	*batchBytes += uint64(len(data))
}

// commandOf is the command a leader proposes for req, stamped with its
// clock (decision 16).
func commandOf(req wire.Request, proposalID uint64, now time.Time) storage.Command {
	cmd := storage.Command{Topic: req.Topic, ClientID: req.ClientID, Seq: req.Seq, ProposalID: proposalID,
		TimeMs: uint64(now.UnixMilli()), Receipt: req.Receipt, Wait: req.WaitMs > 0}
	switch {
	case req.Type == wire.TypeTopic:
		cmd.Op = storage.OpCreateTopic
		cmd.MaxDeliveries, cmd.DeadLetter = req.MaxDeliveries, req.DeadLetter
	case req.Method == wire.MethodPut:
		cmd.Op = storage.OpPut
		cmd.Message = req.Message
	case req.Method == wire.MethodReceive:
		cmd.Op, cmd.LeaseMs = storage.OpReceive, req.Lease()
	case req.Method == wire.MethodAck:
		cmd.Op = storage.OpAck
	case req.Method == wire.MethodNack:
		cmd.Op, cmd.DelayMs = storage.OpNack, req.DelayMs
	case req.Method == wire.MethodExtend:
		cmd.Op, cmd.LeaseMs = storage.OpExtend, req.Lease()
	default:
		cmd.Op = storage.OpPop
	}
	return cmd
}

// startRead begins a read-index round for a read request (GET topic): the
// answer is served once this node has applied everything committed before
// the request arrived and has confirmed it is still the leader.
func (n *node) startRead(cr clientRequest) {
	id := n.reqs.addRead(cr)
	n.core.ReadIndex(binary.BigEndian.AppendUint64(nil, id))
}

func (n *node) answerNotLeader(route replyTo) {
	lead := n.core.Lead()
	if lead == raftlog.None || lead == n.self {
		n.reply.send(route, wire.ErrorResponse(wire.ErrNoLeader, "no leader is elected right now; retry shortly"))
		return
	}
	resp := wire.ErrorResponse(wire.ErrNotLeader, fmt.Sprintf("this broker is a follower; send the request to the leader at %s", n.clientAddrs[lead]))
	resp.Leader = n.clientAddrs[lead]
	n.reply.send(route, resp)
}

// processReady handles every Ready in the documented order: send what may
// leave early, persist, send the rest, apply, Advance.
func (n *node) processReady() error {
	for n.core.HasReady() {
		rd := n.core.Ready()
		// The snapshot first: the entries after it continue its log.
		if !rd.Snapshot.IsEmpty() {
			if err := n.installSnapshot(rd.Snapshot); err != nil {
				n.log.Error().Err(err).Msg("cannot install the snapshot; stopping this node")
				return err
			}
		}
		// A Ready that only moves the commit index needs no write: commit is
		// relearned from the leader after a restart, and skipping it saves an
		// fsync per batch.
		// A leader's appends and heartbeats leave before its own write
		// (Raft dissertation §10.2.1): the followers' fsyncs overlap ours.
		n.noteAppendedChanges(rd.Entries)
		n.trans.Send(rd.SendBeforePersist())
		if rd.MustSync || len(rd.Entries) > 0 {
			n.failpoint(fpLogBeforePersist)
			saveStart := time.Now()
			if err := n.raft.Save(rd.HardState, rd.Entries); err != nil {
				n.log.Error().Err(err).Msg("cannot persist the raft log; stopping this node")
				return fmt.Errorf("%w: persist raft log: %w", ErrStopped, err)
			}
			n.stats.logSyncs.Add(1)
			n.stats.logEntries.Add(uint64(len(rd.Entries)))
			n.metrics.ObserveLogCommit(time.Since(saveStart), len(rd.Entries))
			n.failpoint(fpLogAfterPersist)
		}
		if err := n.noteRecovered(rd.SoftState); err != nil {
			return err
		}
		if rd.SoftState != nil {
			if rd.SoftState.Lead != n.lastLead {
				n.lastLead = rd.SoftState.Lead
				n.stats.leaderChanges.Add(1)
			}
			n.log.Info().Stringer("role", rd.SoftState.Role).Int("leader", nodeIndex(rd.SoftState.Lead)).Uint64("term", n.core.Status().Term).Msg("role changed")
			if rd.SoftState.Role != raftlog.RoleLeader {
				n.failReads()
				n.failWaiters()
				n.stopSenders()
			}
		}
		msgs, snaps := splitSnapshots(rd.SendAfterPersist())
		n.trans.Send(msgs)
		if err := n.applyChanges(rd.CommittedEntries); err != nil {
			return err
		}
		if k := len(rd.CommittedEntries); k > 0 {
			// Handed to the applier; the loop goes on to the next Ready and
			// answers when the results come back (takeApplied).
			n.applier.submit(rd.CommittedEntries)
			n.handed = rd.CommittedEntries[k-1].Index
		}
		for _, rs := range rd.ReadStates {
			n.readIndexKnown(rs)
		}
		n.core.Advance(rd)
		for _, m := range snaps {
			n.startSnapshotSend(m)
		}
		n.serveReads()
	}
	return nil
}

// takeApplied answers the requests of the batches the applier has applied,
// serves the reads they complete and wakes the waiters of the topics they
// readied. An error means the applier failed: the node must stop.
func (n *node) takeApplied() error {
	for _, d := range n.applier.take() {
		if d.err != nil {
			return d.err
		}
		n.answerApplied(d.results)
		n.applied = max(n.applied, d.last)
	}
	n.serveReads()
	n.wakeWaiters()
	return nil
}

// quiesceApplier waits until the applier has applied everything handed to
// it, runs fn (if not nil) on the applier with state.db to itself, and
// takes the results. Snapshots, installs and state.db swaps use it: they
// need state.db at the handed index, and no apply beside them.
func (n *node) quiesceApplier(fn func(*storage.StateDB) error) error {
	if fn == nil {
		fn = func(*storage.StateDB) error { return nil }
	}
	err := n.applier.do(fn)
	if terr := n.takeApplied(); terr != nil {
		return terr
	}
	return err
}

// splitSnapshots takes the MsgSnaps out of msgs: their snapshot files travel
// in chunks (snapsend.go), not as one Raft message.
func splitSnapshots(msgs []raftlog.Message) (rest, snaps []raftlog.Message) {
	for i, m := range msgs {
		if m.Type == raftlog.MsgSnap {
			if rest == nil {
				rest = append(make([]raftlog.Message, 0, len(msgs)), msgs[:i]...)
			}
			snaps = append(snaps, m)
			continue
		}
		if rest != nil {
			rest = append(rest, m)
		}
	}
	if rest == nil && snaps == nil {
		return msgs, nil
	}
	return rest, snaps
}

func (n *node) answerApplied(applied []storage.Applied) {
	for _, a := range applied {
		n.noteApplied(a)
		w, ok := n.reqs.takeWrite(a.ProposalID)
		if !ok {
			continue
		}
		if a.Result.Waiting {
			n.waitAgain(w)
			continue
		}
		n.failpoint(fpBeforeReply)
		n.reply.send(w.route, responseOf(a.Result))
	}
}

func responseOf(r storage.Result) wire.Response {
	switch {
	case r.Refusal == storage.RefusalStaleReceipt:
		return wire.ErrorResponse(wire.ErrStaleReceipt, "the receipt's lease ended, or its message was acked, dead-lettered or delivered again; nothing changed")
	case r.Refusal == storage.RefusalNoDeadLetter:
		return wire.ErrorResponse(wire.ErrBadRequest, "the dead_letter topic does not exist; create it first")
	case r.Receipt != "":
		msg, receipt, deliveries := r.Message, r.Receipt, r.Deliveries
		return wire.Response{Success: true, Message: &msg, Receipt: &receipt, Deliveries: &deliveries}
	case r.Waiting:
		return wire.Fail()
	case r.StaleSeq:
		return wire.ErrorResponse(wire.ErrStaleSeq, "this seq is older than the last one this client_id used; its answer is no longer kept: use a new, higher seq")
	case r.HasMessage:
		msg := r.Message
		return wire.Response{Success: r.Success, Message: &msg}
	case r.Success:
		return wire.OK()
	}
	return wire.Fail()
}

func (n *node) readIndexKnown(rs raftlog.ReadState) {
	if len(rs.Context) != 8 {
		return
	}
	n.reqs.readIndexKnown(binary.BigEndian.Uint64(rs.Context), rs.Index)
}

// serveReads answers the reads whose read index has been applied.
func (n *node) serveReads() {
	servable := n.reqs.takeServable(n.applied)
	if len(servable) == 0 {
		return
	}
	topics, err := n.state.Topics()
	if err != nil {
		n.log.Error().Err(err).Msg("read topics")
	}
	if topics == nil {
		topics = []string{}
	}
	for _, cr := range servable {
		if cr.req.Method == wire.MethodInfo {
			n.reply.send(cr.route, n.topicInfo(cr.req.Topic))
			continue
		}
		if err != nil {
			n.reply.send(cr.route, wire.ErrorResponse(wire.ErrInternal, "cannot read the topic list: "+err.Error()))
			continue
		}
		n.reply.send(cr.route, wire.Response{Success: true, Topics: &topics})
	}
}

// failReads answers the reads a deposed leader can no longer confirm.
func (n *node) failReads() {
	for _, cr := range n.reqs.takeReads() {
		n.answerNotLeader(cr.route)
	}
}

// expire answers requests whose deadline passed: their outcome is unknown.
func (n *node) expire(now time.Time) {
	writes, unconfirmed, unapplied := n.reqs.expired(now)
	for _, cr := range writes {
		n.reply.send(cr.route, wire.ErrorResponse(wire.ErrTimeout, "the request did not commit in time; its outcome is unknown: retry with the same client_id and seq"))
	}
	for _, cr := range unconfirmed {
		n.reply.send(cr.route, wire.ErrorResponse(wire.ErrTimeout, "the leader could not confirm its leadership in time; retry"))
	}
	for _, cr := range unapplied {
		n.reply.send(cr.route, wire.ErrorResponse(wire.ErrTimeout, "the read did not complete in time; retry"))
	}
}

// failAll answers every waiting request with code.
func (n *node) failAll(code, detail string) {
	for _, cr := range n.reqs.takeAll() {
		n.reply.send(cr.route, wire.ErrorResponse(code, detail))
	}
	for _, w := range n.waiters.takeAll() {
		n.reply.send(w.cr.route, wire.ErrorResponse(code, detail))
	}
	n.failSnapshotWaiters(code, detail)
}
