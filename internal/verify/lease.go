package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
)

// Leased delivery under faults: leased producers put to lease topics
// (each with a delivery limit and a dead-letter topic), and leased
// consumers receive with short leases and then ack, ack late, nack,
// extend, never ack, or crash mid-lease (drop their session for a new
// one). After the heal every lease topic is received and acked until
// empty, and every dead-letter topic popped until empty. The history goes
// to checkLeases, apart from the FIFO history the linearizability checker
// reads (a leased topic is not a FIFO queue).

// LeaseConfig shapes the leased clients; Consumers 0 disables them.
type LeaseConfig struct {
	Producers     int
	Consumers     int
	Topics        int
	LeaseMs       uint64 // the consumers' lease
	MaxDeliveries uint64 // of every lease topic
}

// LeaseKind is a leased-delivery operation.
type LeaseKind string

const (
	LeasePut     LeaseKind = "put"
	LeaseReceive LeaseKind = "receive"
	LeaseAck     LeaseKind = "ack"
	LeaseNack    LeaseKind = "nack"
	LeaseExtend  LeaseKind = "extend"
	LeaseDeadPop LeaseKind = "dead_pop" // a GET on a dead-letter topic
)

// LeaseOp is one leased-delivery operation.
type LeaseOp struct {
	ID         int
	Lane       int
	Kind       LeaseKind
	Topic      string
	Value      string // put: sent; receive and dead_pop ok: received
	Receipt    string // receive ok: granted; ack, nack, extend: used
	Deliveries uint64 // receive ok
	LeaseMs    uint64 // receive, extend
	Call       time.Duration
	Return     time.Duration
	Status     OpStatus
	Stale      bool // answered stale_receipt (Status is StatusFail)
	Drain      bool
}

type leaseHistory struct {
	start time.Time
	mu    sync.Mutex
	ops   []LeaseOp
}

func (h *leaseHistory) invoke(op LeaseOp) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	op.ID, op.Call, op.Status = len(h.ops), time.Since(h.start), StatusUnknown
	h.ops = append(h.ops, op)
	return op.ID
}

// complete records an executed answer.
func (h *leaseHistory) complete(id int, rep wire.Response) {
	h.mu.Lock()
	defer h.mu.Unlock()
	op := &h.ops[id]
	op.Return, op.Status = time.Since(h.start), StatusFail
	if rep.Success {
		op.Status = StatusOK
	}
	op.Stale = rep.Error == wire.ErrStaleReceipt
	if rep.Message != nil && op.Kind != LeasePut {
		op.Value = *rep.Message
	}
	if rep.Receipt != nil {
		op.Receipt = *rep.Receipt
	}
	if rep.Deliveries != nil {
		op.Deliveries = *rep.Deliveries
	}
}

func (h *leaseHistory) snapshot() []LeaseOp {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]LeaseOp(nil), h.ops...)
}

func leaseTopic(i int) string      { return fmt.Sprintf("lease%02d", i) }
func deadLetterTopic(i int) string { return fmt.Sprintf("lease%02d.dead", i) }

// leaseWorkload drives the leased clients.
type leaseWorkload struct {
	cfg     LeaseConfig
	w       *workload // sessions, servers, seed
	hist    *leaseHistory
	laneOff int
}

func newLeaseWorkload(cfg LeaseConfig, w *workload) *leaseWorkload {
	return &leaseWorkload{cfg: cfg, w: w, hist: &leaseHistory{start: w.hist.start}, laneOff: 5000}
}

// do sends one request for lane and records it; ok is false when no
// answer came before ctx ended (the op stays unknown).
func (lw *leaseWorkload) do(ctx context.Context, c *wclient, op LeaseOp, req wire.Request) (wire.Response, bool) {
	_, frame := c.next(req)
	id := lw.hist.invoke(op)
	res := c.send(ctx, frame)
	if !res.ok {
		return wire.Response{}, false
	}
	lw.hist.complete(id, res.reply)
	return res.reply, true
}

func (lw *leaseWorkload) setup(ctx context.Context) error {
	c := lw.w.session("lease-setup", lw.laneOff)
	defer c.close()
	for i := 0; i < lw.cfg.Topics; i++ {
		for _, req := range []wire.Request{
			{Type: wire.TypeTopic, Method: wire.MethodPut, Topic: deadLetterTopic(i)},
			{Type: wire.TypeTopic, Method: wire.MethodPut, Topic: leaseTopic(i), MaxDeliveries: lw.cfg.MaxDeliveries, DeadLetter: deadLetterTopic(i)},
		} {
			_, frame := c.next(req)
			if res := c.send(ctx, frame); !res.ok {
				return fmt.Errorf("chaos: create topic %s: no answer before %v", req.Topic, ctx.Err())
			}
		}
	}
	return nil
}

func (lw *leaseWorkload) run(ctx context.Context) {
	var wg sync.WaitGroup
	for p := 0; p < lw.cfg.Producers; p++ {
		c := lw.w.session(fmt.Sprintf("lp%d", p), lw.laneOff+1+p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.close()
			for n := 1; ctx.Err() == nil; n++ {
				topic := leaseTopic(c.rng.IntN(lw.cfg.Topics))
				value := fmt.Sprintf("%s#%d", c.id, n)
				if _, ok := lw.do(ctx, c, LeaseOp{Lane: p, Kind: LeasePut, Topic: topic, Value: value},
					wire.Request{Type: wire.TypeMessage, Method: wire.MethodPut, Topic: topic, Message: value}); !ok {
					return
				}
				pause(ctx, c.rng, 20*time.Millisecond)
			}
		}()
	}
	for k := 0; k < lw.cfg.Consumers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lw.consume(ctx, k)
		}()
	}
	wg.Wait()
}

func pause(ctx context.Context, rng *rand.Rand, max time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(rng.Int64N(int64(max)) + 1)):
	}
}

// consume is one leased consumer; each message gets a behaviour drawn
// from the consumer's seeded rng.
func (lw *leaseWorkload) consume(ctx context.Context, k int) {
	lane := lw.cfg.Producers + k
	incarnation := 0
	c := lw.w.session(fmt.Sprintf("lc%d.%d", k, incarnation), lw.laneOff+100+k)
	defer func() { c.close() }()
	lease := time.Duration(lw.cfg.LeaseMs) * time.Millisecond
	for ctx.Err() == nil {
		topic := leaseTopic(c.rng.IntN(lw.cfg.Topics))
		rep, ok := lw.do(ctx, c, LeaseOp{Lane: lane, Kind: LeaseReceive, Topic: topic, LeaseMs: lw.cfg.LeaseMs},
			wire.Request{Type: wire.TypeMessage, Method: wire.MethodReceive, Topic: topic, LeaseMs: lw.cfg.LeaseMs, WaitMs: 200})
		if !ok || !rep.Success || rep.Receipt == nil {
			continue
		}
		receipt := *rep.Receipt
		settle := func(kind LeaseKind, req wire.Request) {
			req.Type, req.Topic, req.Receipt = wire.TypeMessage, topic, receipt
			lw.do(ctx, c, LeaseOp{Lane: lane, Kind: kind, Topic: topic, Receipt: receipt, LeaseMs: req.LeaseMs}, req)
		}
		switch r := c.rng.IntN(100); {
		case r < 50: // ack in time
			settle(LeaseAck, wire.Request{Method: wire.MethodAck})
		case r < 65: // ack late: usually after the lease ended
			pause(ctx, c.rng, 2*lease)
			settle(LeaseAck, wire.Request{Method: wire.MethodAck})
		case r < 75:
			settle(LeaseNack, wire.Request{Method: wire.MethodNack, DelayMs: uint64(c.rng.IntN(2)) * lw.cfg.LeaseMs})
		case r < 82: // extend, work a little longer, ack
			settle(LeaseExtend, wire.Request{Method: wire.MethodExtend, LeaseMs: 2 * lw.cfg.LeaseMs})
			pause(ctx, c.rng, lease)
			settle(LeaseAck, wire.Request{Method: wire.MethodAck})
		case r < 91: // never ack: the lease ends
		default: // crash mid-lease: a new session takes over, the receipt is forgotten
			c.close()
			incarnation++
			c = lw.w.session(fmt.Sprintf("lc%d.%d", k, incarnation), lw.laneOff+100+k+1000*incarnation)
		}
	}
}

// drain receives and acks every lease topic until its details show it
// empty, then pops every dead-letter topic until empty.
func (lw *leaseWorkload) drain(ctx context.Context) error {
	c := lw.w.session("lease-drain", lw.laneOff+99)
	defer c.close()
	lane := lw.cfg.Producers + lw.cfg.Consumers
	for i := 0; i < lw.cfg.Topics; i++ {
		topic := leaseTopic(i)
		for ctx.Err() == nil {
			rep, ok := lw.do(ctx, c, LeaseOp{Lane: lane, Kind: LeaseReceive, Topic: topic, LeaseMs: 10000, Drain: true},
				wire.Request{Type: wire.TypeMessage, Method: wire.MethodReceive, Topic: topic, LeaseMs: 10000, WaitMs: 500})
			if !ok {
				break
			}
			if rep.Success && rep.Receipt != nil {
				lw.do(ctx, c, LeaseOp{Lane: lane, Kind: LeaseAck, Topic: topic, Receipt: *rep.Receipt, Drain: true},
					wire.Request{Type: wire.TypeMessage, Method: wire.MethodAck, Topic: topic, Receipt: *rep.Receipt})
				continue
			}
			c.first = nil // a read: no seq, nothing to compare with
			res := c.send(ctx, wire.EncodeRequest(wire.Request{ClientID: c.id, Type: wire.TypeTopic, Method: wire.MethodInfo, Topic: topic}))
			if res.ok && res.reply.Info != nil && res.reply.Info.Ready+res.reply.Info.Leased+res.reply.Info.Delayed == 0 {
				break
			}
		}
		for ctx.Err() == nil {
			dead := deadLetterTopic(i)
			rep, ok := lw.do(ctx, c, LeaseOp{Lane: lane, Kind: LeaseDeadPop, Topic: dead, Drain: true},
				wire.Request{Type: wire.TypeMessage, Method: wire.MethodGet, Topic: dead})
			if !ok || !rep.Success {
				break
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("chaos: lease drain: %w", err)
	}
	return nil
}
