package broker

import (
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/raftlog"
)

// shutdown stops the node gracefully within the shutdown budget: requests
// still queued are refused, requests already proposed get a chance to
// commit, a leader hands leadership to a live follower (handOver), and
// whatever is left is answered shutting_down.
func (n *node) shutdown(ticker *time.Ticker) error {
	deadline := time.Now().Add(n.shutdownBudget)
	n.refuseQueued()
	// Let proposals in flight commit: their clients then get a real answer.
	if err := n.runUntil(deadline.Add(-n.shutdownBudget/2), ticker, func() bool { return n.reqs.pendingWrites() == 0 }); err != nil {
		return err
	}
	if n.core.Role() == raftlog.RoleLeader && len(n.core.Conf().Voters) > 1 {
		if err := n.handOver(deadline, ticker); err != nil {
			return err
		}
	}
	// Entries already committed get their real answers.
	if err := n.quiesceApplier(nil); err != nil {
		return err
	}
	n.failAll(wire.ErrShuttingDown, "the broker stopped before this request completed; its outcome is unknown: retry with the same client_id and seq on another broker")
	return nil
}

// refuseQueued answers requests that reached the queue but not the core.
func (n *node) refuseQueued() {
	for {
		select {
		case cr := <-n.requestCh:
			n.reply.send(cr.route, wire.ErrorResponse(wire.ErrShuttingDown, "this broker is stopping; send the request to another broker"))
		default:
			return
		}
	}
}

// runUntil keeps the node working (ticks, peer messages, Ready) until done
// reports true or the deadline passes. New client requests are refused.
func (n *node) runUntil(deadline time.Time, ticker *time.Ticker, done func() bool) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for !done() {
		select {
		case <-timer.C:
			return nil
		case <-ticker.C:
			n.onTick()
		case m := <-n.trans.Recv():
			n.step(m)
		case cr := <-n.requestCh:
			n.reply.send(cr.route, wire.ErrorResponse(wire.ErrShuttingDown, "this broker is stopping; send the request to another broker"))
		case <-n.applier.doneC():
			if err := n.takeApplied(); err != nil {
				return err
			}
		}
		if err := n.processReady(); err != nil {
			return err
		}
		n.publishStatus()
	}
	return nil
}

// handOver transfers leadership to a live follower before the leader
// stops: the most up-to-date one first, then the next live one if that
// one does not take over within an election timeout, until the deadline.
// With no live follower there is nobody to hand over to, and the leader
// stops at once: waiting would only delay the election the others hold
// without it.
func (n *node) handOver(deadline time.Time, ticker *time.Ticker) error {
	tried := map[uint64]bool{}
	for time.Now().Before(deadline) {
		if n.core.Role() != raftlog.RoleLeader {
			// Deposed meanwhile (a newer term, CheckQuorum): the others
			// elect without this node.
			n.log.Info().Stringer("role", n.core.Role()).Msg("no longer leader; stopping")
			return nil
		}
		to := transferTarget(n.core.Status(), tried)
		if to == raftlog.None {
			if len(tried) == 0 {
				n.log.Info().Msg("no follower answered within the election timeout; stopping without a leadership transfer")
			} else {
				n.log.Warn().Int("tried", len(tried)).Msg("no live follower took over leadership; stopping")
			}
			return nil
		}
		tried[to] = true
		n.log.Info().Int("to", nodeIndex(to)).Msg("transferring leadership before stopping")
		n.core.TransferLeadership(to)
		attempt := time.Now().Add(n.tick*time.Duration(n.electionTicks) + n.tick)
		if attempt.After(deadline) {
			attempt = deadline
		}
		if err := n.runUntil(attempt, ticker, n.leftLeadership); err != nil {
			return err
		}
		if n.leftLeadership() {
			if lead := n.core.Lead(); lead != raftlog.None {
				n.log.Info().Int("leader", nodeIndex(lead)).Msg("leadership transferred")
			}
			return nil
		}
		n.log.Warn().Int("to", nodeIndex(to)).Msg("leadership transfer did not complete; trying the next live follower")
	}
	n.log.Warn().Stringer("role", n.core.Role()).Msg("leadership transfer did not complete before the shutdown deadline")
	return nil
}

// leftLeadership reports whether another node leads now. (Stepping down
// on the target's vote request is not enough: this node's vote may still
// be on its way, and the transport drops what is queued when it closes.)
func (n *node) leftLeadership() bool {
	lead := n.core.Lead()
	return lead != n.self && lead != raftlog.None
}

// transferTarget picks the follower to hand leadership to: among those the
// leader heard from within the last election timeout (a follower that
// stopped seconds ago may still show the highest match) and not yet tried,
// the one with the highest match index, the lowest id on a tie. None if
// there is no such follower.
func transferTarget(st raftlog.Status, tried map[uint64]bool) uint64 {
	best, bestMatch := raftlog.None, uint64(0)
	for id, pr := range st.Progress {
		if id == st.ID || !pr.RecentActive || tried[id] {
			continue
		}
		if best == raftlog.None || pr.Match > bestMatch || (pr.Match == bestMatch && id < best) {
			best, bestMatch = id, pr.Match
		}
	}
	return best
}
