package broker

import (
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/storage"
)

// The node's side of leased delivery (decisions 16 and 17): the expiry
// ticks a leader proposes, long-polling waiters, and topic details.

// tickRetry is how long an expiry tick may stay unapplied before the
// leader proposes another (it may have been lost with a leadership change).
const tickRetry = time.Second

// maybeProposeExpiry proposes an OpTick stamped with the leader's clock
// once that clock has passed the earliest lease or delay end, so expired
// leases are redelivered within about a tick, not at the next request.
func (n *node) maybeProposeExpiry(now time.Time) {
	if n.core.Role() != raftlog.RoleLeader {
		return
	}
	if n.tickProposal != 0 && now.Sub(n.tickProposedAt) < tickRetry {
		return
	}
	until, ok, err := n.state.NextExpiry()
	if err != nil || !ok || uint64(now.UnixMilli()) < until {
		return
	}
	id := n.reqs.nextProposal
	n.reqs.nextProposal++
	cmd := storage.Command{Op: storage.OpTick, ProposalID: id, TimeMs: uint64(now.UnixMilli())}
	if err := n.core.ProposeBatch([][]byte{storage.EncodeCommand(cmd)}); err != nil {
		return
	}
	n.tickProposal, n.tickProposedAt = id, now
	n.stats.proposed.Add(1)
}

// noteApplied records what an applied entry means for the leased-delivery
// machinery: the expiry tick it completes, the topics it readied.
func (n *node) noteApplied(a storage.Applied) {
	if n.tickProposal != 0 && a.ProposalID == n.tickProposal {
		n.tickProposal = 0
	}
	for _, t := range a.Readied {
		if !containsString(n.readied, t) {
			n.readied = append(n.readied, t)
		}
	}
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// waitAgain handles a long-polling request whose command found nothing:
// it waits (parked) until a message is ready or its wait ends.
func (n *node) waitAgain(cr *clientRequest) {
	w := cr.waiter
	switch {
	case w == nil:
		// Not this broker's waiter (cannot happen: Wait is set only with one).
		n.reply.send(cr.route, wire.Fail())
	case n.core.Role() != raftlog.RoleLeader:
		n.answerNotLeader(cr.route)
	default:
		// Parked even when its wait has ended: a later entry of the batches
		// just taken may have readied its topic (wakeWaiters proposes it
		// again), else the next tick answers it {"success":false}. Answering
		// now could say "nothing" while the applied state holds a message,
		// and a resend of the same seq would then find it.
		n.waiters.park(w)
	}
}

// wakeWaiters proposes again, in arrival order, as many waiters of each
// readied topic as it has ready messages.
func (n *node) wakeWaiters() {
	readied := n.readied
	n.readied = n.readied[:0]
	if n.waiters.len() == 0 || n.core.Role() != raftlog.RoleLeader {
		return
	}
	now := time.Now()
	var batch [][]byte
	var ids []uint64
	for _, topic := range readied {
		info, found, err := n.state.TopicInfo(topic)
		if err != nil || !found || info.Ready == 0 {
			continue
		}
		for _, w := range n.waiters.take(topic, int(min(info.Ready, uint64(maxDrain)))) {
			cr := w.cr
			cr.deadline, cr.waiter = now.Add(n.requestTimeout), w
			id := n.reqs.addWrite(cr)
			batch = append(batch, storage.EncodeCommand(commandOf(cr.req, id, now)))
			ids = append(ids, id)
		}
	}
	n.proposeBatch(batch, ids)
}

// expireWaiters ends the waits that are over. Each waiter's command is
// proposed one last time without Wait: applied, it takes a message that
// came meanwhile or, finding none, records "nothing came" in the client's
// session like any other answer. Answering {"success":false} from here
// instead would leave the seq unrecorded, and a copy of the same request
// still parked or in flight (a client's resend) could later take a message
// that no one is waiting for: a pop would lose it.
func (n *node) expireWaiters(now time.Time) {
	if !n.waiters.anyExpired(now) {
		return
	}
	if n.core.Role() != raftlog.RoleLeader {
		n.failWaiters()
		return
	}
	var batch [][]byte
	var ids []uint64
	for _, w := range n.waiters.expired(now) {
		cr := w.cr
		cr.req.WaitMs = 0
		cr.deadline, cr.waiter = now.Add(n.requestTimeout), nil
		id := n.reqs.addWrite(cr)
		batch = append(batch, storage.EncodeCommand(commandOf(cr.req, id, now)))
		ids = append(ids, id)
	}
	n.proposeBatch(batch, ids)
}

// failWaiters answers every waiter of a deposed leader not_leader: the
// client waits on the new one.
func (n *node) failWaiters() {
	for _, w := range n.waiters.takeAll() {
		n.answerNotLeader(w.cr.route)
	}
}

// topicInfo answers topic INFO from the applied state.
func (n *node) topicInfo(name string) wire.Response {
	info, found, err := n.state.TopicInfo(name)
	switch {
	case err != nil:
		return wire.ErrorResponse(wire.ErrInternal, "cannot read the topic: "+err.Error())
	case !found:
		return wire.Fail()
	}
	return wire.Response{Success: true, Info: &wire.TopicInfo{Name: info.Name, Ready: info.Ready, Leased: info.Leased,
		Delayed: info.Delayed, MaxDeliveries: info.MaxDeliveries, DeadLetter: info.DeadLetter}}
}
