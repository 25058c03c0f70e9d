package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client"
)

// WorkloadConfig shapes the clients.
type WorkloadConfig struct {
	Producers int // sessions that only put
	Consumers int // sessions that only pop
	Topics    int // topic slots used at once (>= 16 in the suites)
	// OpsPerTopic bounds the operations on one topic before its slot moves
	// to a fresh topic, so each linearizability check stays decidable.
	OpsPerTopic int
	DropPct     int           // percent of executed replies dropped and resent
	ThinkMax    time.Duration // random pause after each op, up to this
}

// slot is one of the Topics; it moves to a fresh topic every OpsPerTopic ops.
type slot struct {
	mu       sync.Mutex
	index    int
	epoch    int
	ops      int
	rotating bool
}

func topicName(slot, epoch int) string { return fmt.Sprintf("t%02d.e%d", slot, epoch) }

func (s *slot) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return topicName(s.index, s.epoch)
}

// workload runs the sessions and records the history.
type workload struct {
	cfg     WorkloadConfig
	servers []string
	nodeOf  map[string]int
	hist    *history
	slots   []*slot
	seed    uint64
	curve   *client.Curve // nil: plaintext

	mu       sync.Mutex
	topics   []string  // every topic created, in order
	pending  []pending // ops unresolved when the workload stopped
	sessions []*wclient
	// setupErr: a topic could not be created in time.
	setupErr error
}

// pending is an unresolved operation and the session that can resend it.
type pending struct {
	op    int
	frame []byte
	c     *wclient
}

func newWorkload(cfg WorkloadConfig, servers []string, seed uint64, hist *history) *workload {
	w := &workload{cfg: cfg, servers: servers, nodeOf: map[string]int{}, hist: hist, seed: seed}
	for i, s := range servers {
		w.nodeOf[s] = i
	}
	for i := 0; i < cfg.Topics; i++ {
		w.slots = append(w.slots, &slot{index: i})
	}
	return w
}

func (w *workload) session(name string, lane int) *wclient {
	c := newWClient(fmt.Sprintf("chaos-%x-%s", w.seed, name), w.servers,
		rand.New(rand.NewPCG(w.seed, uint64(lane)+1)), w.cfg.DropPct)
	c.curve = w.curve
	w.mu.Lock()
	w.sessions = append(w.sessions, c)
	w.mu.Unlock()
	return c
}

// createTopic creates name, retrying until the cluster answers (created or
// already exists, both fine) or ctx ends.
func (w *workload) createTopic(ctx context.Context, c *wclient, name string) error {
	_, frame := c.next(wire.Request{Type: wire.TypeTopic, Method: wire.MethodPut, Topic: name})
	if res := c.send(ctx, frame); !res.ok {
		return fmt.Errorf("chaos: create topic %s: no answer before %v", name, ctx.Err())
	}
	w.mu.Lock()
	w.topics = append(w.topics, name)
	w.mu.Unlock()
	return nil
}

// setup creates the first topic of every slot.
func (w *workload) setup(ctx context.Context) error {
	c := w.session("setup", 1000)
	defer c.close()
	for _, s := range w.slots {
		if err := w.createTopic(ctx, c, s.current()); err != nil {
			return err
		}
	}
	return nil
}

// run drives the sessions until ctx ends. Sessions whose last op is still
// unanswered leave it in w.pending for resolve.
func (w *workload) run(ctx context.Context) {
	var wg sync.WaitGroup
	lanes := w.cfg.Producers + w.cfg.Consumers
	for lane := 0; lane < lanes; lane++ {
		kind, name := OpPut, fmt.Sprintf("p%d", lane)
		if lane >= w.cfg.Producers {
			kind, name = OpPop, fmt.Sprintf("c%d", lane-w.cfg.Producers)
		}
		c := w.session(name, lane)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx, c, lane, kind)
		}()
	}
	wg.Wait()
}

func (w *workload) loop(ctx context.Context, c *wclient, lane int, kind OpKind) {
	rotator := w.session(fmt.Sprintf("r%d", lane), 2000+lane)
	defer rotator.close()
	n := 0
	for ctx.Err() == nil {
		s := w.slots[c.rng.IntN(len(w.slots))]
		topic := s.current()
		req := wire.Request{Type: wire.TypeMessage, Method: wire.MethodGet, Topic: topic}
		value := ""
		if kind == OpPut {
			n++
			value = fmt.Sprintf("%s#%d", c.id, n)
			req.Method, req.Message = wire.MethodPut, value
		}
		_, frame := c.next(req)
		id := w.hist.invoke(lane, kind, topic, value, false)
		res := c.send(ctx, frame)
		if !res.ok {
			w.mu.Lock()
			w.pending = append(w.pending, pending{op: id, frame: frame, c: c})
			w.mu.Unlock()
			return
		}
		w.finish(id, res)
		w.maybeRotate(ctx, s, rotator)
		if w.cfg.ThinkMax > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(c.rng.Int64N(int64(w.cfg.ThinkMax)))):
			}
		}
	}
	c.close()
}

func (w *workload) finish(id int, res result) {
	st, msg := StatusFail, ""
	if res.reply.Success {
		st = StatusOK
		if res.reply.Message != nil {
			msg = *res.reply.Message
		}
	}
	node, ok := w.nodeOf[res.server]
	if !ok {
		node = -1
	}
	w.hist.complete(id, st, msg, node, res.dropped)
}

// maybeRotate moves s to a fresh topic once it has seen OpsPerTopic ops.
// The caller creates the new topic; others keep using the old one until it
// exists.
func (w *workload) maybeRotate(ctx context.Context, s *slot, c *wclient) {
	s.mu.Lock()
	s.ops++
	if s.ops < w.cfg.OpsPerTopic || s.rotating {
		s.mu.Unlock()
		return
	}
	s.rotating = true
	next := topicName(s.index, s.epoch+1)
	s.mu.Unlock()
	err := w.createTopic(ctx, c, next)
	s.mu.Lock()
	s.rotating = false
	if err == nil {
		s.epoch++
		s.ops = 0
	}
	s.mu.Unlock()
}

// resolve resends every pending op with its own client_id/seq until the
// cluster answers or ctx ends (the cluster is healed by then). What stays
// unanswered remains StatusUnknown.
func (w *workload) resolve(ctx context.Context) (unresolved int) {
	w.mu.Lock()
	ps := w.pending
	w.pending = nil
	w.mu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.c.close()
			res := p.c.send(ctx, p.frame)
			if !res.ok {
				mu.Lock()
				unresolved++
				mu.Unlock()
				return
			}
			w.finish(p.op, res)
		}()
	}
	wg.Wait()
	return unresolved
}

// drain pops every topic ever created until it answers empty, recording
// each pop (lanes after the workload's). It returns an error if a topic
// could not be drained before ctx ended.
func (w *workload) drain(ctx context.Context, drainers int) error {
	w.mu.Lock()
	topics := append([]string(nil), w.topics...)
	w.mu.Unlock()
	base := w.cfg.Producers + w.cfg.Consumers
	work := make(chan string)
	errs := make(chan error, len(topics))
	var wg sync.WaitGroup
	for d := 0; d < drainers; d++ {
		c := w.session(fmt.Sprintf("d%d", d), 3000+d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.close()
			for topic := range work {
				for {
					_, frame := c.next(wire.Request{Type: wire.TypeMessage, Method: wire.MethodGet, Topic: topic})
					id := w.hist.invoke(base+d, OpPop, topic, "", true)
					res := c.send(ctx, frame)
					if !res.ok {
						errs <- fmt.Errorf("chaos: drain %s: no answer before %v", topic, ctx.Err())
						break
					}
					w.finish(id, res)
					if !res.reply.Success {
						break
					}
				}
			}
		}()
	}
	for _, t := range topics {
		work <- t
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}

// retryMismatches gathers every session's exactly-once violations.
func (w *workload) retryMismatches() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.sessions {
		out = append(out, c.retryMismatch...)
	}
	return out
}

// lanes is the number of porcupine lanes used (workload plus drainers).
func (w *workload) lanes(drainers int) int { return w.cfg.Producers + w.cfg.Consumers + drainers }
