package broker

import (
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/raftlog"
)

// shutdown stops the node gracefully within the shutdown budget: requests
// still queued are refused, requests already proposed get a chance to
// commit, a leader hands leadership to its most up-to-date follower, and
// whatever is left is answered shutting_down.
func (n *node) shutdown(ticker *time.Ticker) error {
	deadline := time.Now().Add(n.shutdownBudget)
	n.refuseQueued()
	// Let proposals in flight commit: their clients then get a real answer.
	if err := n.runUntil(deadline.Add(-n.shutdownBudget/2), ticker, func() bool { return n.reqs.pendingWrites() == 0 }); err != nil {
		return err
	}
	if n.core.Role() == raftlog.RoleLeader && len(n.peers) > 1 {
		if to := n.transferTarget(); to != raftlog.None {
			n.log.Info().Uint64("to", to).Msg("transferring leadership before stopping")
			n.core.TransferLeadership(to)
			if err := n.runUntil(deadline, ticker, func() bool {
				lead := n.core.Lead()
				return lead != n.self && lead != raftlog.None
			}); err != nil {
				return err
			}
			if lead := n.core.Lead(); lead != n.self && lead != raftlog.None {
				n.log.Info().Uint64("leader", lead).Msg("leadership transferred")
			} else {
				n.log.Warn().Stringer("role", n.core.Role()).Msg("leadership transfer did not complete before the shutdown deadline")
			}
		}
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
		}
		if err := n.processReady(); err != nil {
			return err
		}
		n.publishStatus()
	}
	return nil
}

// transferTarget is the follower with the highest match index.
func (n *node) transferTarget() uint64 {
	st := n.core.Status()
	best, bestMatch := raftlog.None, uint64(0)
	for id, pr := range st.Progress {
		if id == n.self {
			continue
		}
		if best == raftlog.None || pr.Match > bestMatch {
			best, bestMatch = id, pr.Match
		}
	}
	return best
}
