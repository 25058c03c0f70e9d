package verify

import (
	"fmt"
	"sort"
	"time"
)

// LeaseResult is the leased-delivery verdict: every acknowledged put to a
// lease topic was acked exactly once or sits in its dead-letter topic (not
// both), no stale receipt was accepted, and delivery counts never repeat
// or pass the limit.
type LeaseResult struct {
	Puts         int `json:"puts_acked"`
	Receives     int `json:"receives"`
	Acked        int `json:"acked"`
	DeadLettered int `json:"dead_lettered"`
	StaleRefused int `json:"stale_receipts_refused"`
	// Lost: acknowledged puts neither acked nor dead-lettered (and no ack
	// of unknown outcome names them). Duplicated: acked or dead-lettered
	// more than once, or both.
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	NeverSent  int `json:"never_sent"`
	// StaleAccepted: an ACK, NACK or EXTEND that succeeded with a receipt
	// that was provably stale when it was sent: its message had been
	// delivered again, or its lease had ended.
	StaleAccepted int `json:"stale_accepted"`
	// BadCounts: a delivery count repeated for one message, or beyond the
	// topic's limit.
	BadCounts int      `json:"bad_delivery_counts"`
	Examples  []string `json:"examples,omitempty"`
}

// OK reports a clean leased-delivery check.
func (r LeaseResult) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.NeverSent == 0 && r.StaleAccepted == 0 && r.BadCounts == 0
}

// staleMargin covers the millisecond truncation of the leader's stamps.
const staleMargin = 5 * time.Millisecond

// checkLeases checks a leased-delivery history. maxDeliveries is every
// lease topic's limit (0: none).
func checkLeases(ops []LeaseOp, maxDeliveries uint64) LeaseResult {
	var r LeaseResult
	example := func(format string, args ...any) {
		if len(r.Examples) < maxExamples {
			r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
		}
	}
	puts := map[string]*LeaseOp{}
	byReceipt := map[string]*LeaseOp{}  // receipt → its receive
	receives := map[string][]*LeaseOp{} // message → its ok receives
	settles := map[string][]*LeaseOp{}  // receipt → ok extends (for the lease bound)
	for i := range ops {
		op := &ops[i]
		switch {
		case op.Kind == LeasePut:
			puts[op.Value] = op
			if op.Status == StatusOK {
				r.Puts++
			}
		case op.Kind == LeaseReceive && op.Status == StatusOK:
			r.Receives++
			byReceipt[op.Receipt] = op
			receives[op.Value] = append(receives[op.Value], op)
		case op.Kind == LeaseExtend && op.Status == StatusOK:
			settles[op.Receipt] = append(settles[op.Receipt], op)
		}
		if op.Stale {
			r.StaleRefused++
		}
	}
	for msg, rs := range receives {
		if _, ok := puts[msg]; !ok {
			r.NeverSent++
			example("never sent: %q received from %s", msg, rs[0].Topic)
		}
		seen := map[uint64]bool{}
		for _, rv := range rs {
			if seen[rv.Deliveries] || rv.Deliveries == 0 || (maxDeliveries > 0 && rv.Deliveries > maxDeliveries) {
				r.BadCounts++
				example("delivery count %d of %q (op %d) repeated, zero or over the limit %d", rv.Deliveries, msg, rv.ID, maxDeliveries)
			}
			seen[rv.Deliveries] = true
		}
	}
	gone := map[string]int{}        // message → ok acks + dead-letter pops
	unknownAck := map[string]bool{} // message → an ack of unknown outcome named it
	for i := range ops {
		op := &ops[i]
		switch op.Kind {
		case LeaseDeadPop:
			if op.Status == StatusOK {
				r.DeadLettered++
				gone[op.Value]++
				if _, ok := puts[op.Value]; !ok {
					r.NeverSent++
					example("never sent: %q popped from %s", op.Value, op.Topic)
				}
			}
			continue
		case LeaseAck, LeaseNack, LeaseExtend:
		default:
			continue
		}
		rv := byReceipt[op.Receipt]
		if rv == nil {
			continue // the receive that granted it never answered
		}
		if op.Kind == LeaseAck && op.Status == StatusUnknown {
			unknownAck[rv.Value] = true
		}
		if op.Status != StatusOK {
			continue
		}
		if op.Kind == LeaseAck {
			r.Acked++
			gone[rv.Value]++
		}
		if why := staleWhy(op, rv, receives[rv.Value], settles[op.Receipt]); why != "" {
			r.StaleAccepted++
			example("stale receipt accepted: %s of %q (op %d, receipt %s) at %.3fs: %s", op.Kind, rv.Value, op.ID, op.Receipt, op.Call.Seconds(), why)
		}
	}
	var values []string
	for v, p := range puts {
		if p.Status == StatusOK || gone[v] > 0 {
			values = append(values, v)
		}
	}
	sort.Strings(values)
	for _, v := range values {
		switch n := gone[v]; {
		case n > 1:
			r.Duplicated++
			example("duplicate: %q acked or dead-lettered %d times", v, n)
		case n == 0 && puts[v].Status == StatusOK && !unknownAck[v]:
			r.Lost++
			example("lost: %q (put op %d to %s) was neither acked nor dead-lettered", v, puts[v].ID, puts[v].Topic)
		}
	}
	return r
}

// staleWhy says why a successful settle op on the delivery rv was
// provably stale when sent, or "" if it may have been current.
func staleWhy(op, rv *LeaseOp, all, extends []*LeaseOp) string {
	for _, other := range all {
		if other.Deliveries > rv.Deliveries && other.Return < op.Call {
			return fmt.Sprintf("delivery %d was answered at %.3fs, before this was sent", other.Deliveries, other.Return.Seconds())
		}
	}
	// The lease ended at most this late: its receive (or last extend) was
	// stamped no later than its answer.
	end := rv.Return + time.Duration(rv.LeaseMs)*time.Millisecond
	for _, e := range extends {
		if e != op && e.Return < op.Call {
			end = max(end, e.Return+time.Duration(e.LeaseMs)*time.Millisecond)
		}
	}
	if op.Call > end+staleMargin {
		return fmt.Sprintf("its lease ended by %.3fs", end.Seconds())
	}
	return ""
}
