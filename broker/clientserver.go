package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/metrics"
)

// clientRequest is a decoded request on its way to the node loop.
type clientRequest struct {
	route    replyTo
	req      wire.Request
	arrived  time.Time
	deadline time.Time
	// waiter is set while a long-polling request (wait_ms > 0) is
	// proposed: its answer may park it again (waiters.go).
	waiter *waiter
}

// clientServer owns the client ROUTER socket. It decodes and validates
// requests, answers the ones it can (status, bad input, overload, shutting
// down) and hands the rest to the node loop, whose replies come back
// through replies.
type clientServer struct {
	log      zerolog.Logger
	limits   wire.Limits
	timeout  time.Duration
	maxPend  int
	status   func() wire.Status
	toNode   chan<- clientRequest
	stopping *atomic.Bool // set when the broker stops accepting requests
	pending  atomic.Int64 // requests handed to the node and not yet answered
	refusals *refusals
	metrics  *metrics.Metrics

	// maxConns bounds the concurrent client connections (see connLimiter);
	// connsCut counts those cut.
	maxConns int
	connsCut *atomic.Uint64
	limiter  *connLimiter

	// curveSecret, when set, makes the client port a CURVE server whose
	// clients the ZAP handler checks; curveLog logs failed handshakes.
	curveSecret string
	curveLog    *refusalLog

	router  *zmq.Socket
	waiter  *socketWaiter // router's descriptor in Go's poller (zmqwait_unix.go)
	replies *replyQueue
}

// clientPollInterval bounds how long the client server waits before it
// looks at its socket again, whatever the socket's descriptor says.
const clientPollInterval = 50 * time.Millisecond

// newClientServer binds the client socket; run serves.
func newClientServer(zctx *zmq.Context, listen string, cs *clientServer) error {
	router, err := zctx.NewSocket(zmq.ROUTER)
	if err != nil {
		return fmt.Errorf("broker: client socket: %w", err)
	}
	// Bound what one peer can make us buffer; wire.DecodeRequest gives the
	// precise too_large answer below this bound.
	if err := router.SetMaxmsgsize(int64(cs.limits.MaxRequestBytes) * 2); err != nil {
		router.Close()
		return fmt.Errorf("broker: client socket: %w", err)
	}
	if err := router.SetLinger(0); err != nil {
		router.Close()
		return fmt.Errorf("broker: client socket: %w", err)
	}
	if err := router.SetAffinity(clientIOThread); err != nil {
		router.Close()
		return fmt.Errorf("broker: client socket: %w", err)
	}
	if cs.curveSecret != "" {
		if err := serveCurve(router, cs.curveSecret, zapDomainClient); err != nil {
			router.Close()
			return fmt.Errorf("broker: client socket CURVE: %w", err)
		}
	}
	if cs.maxConns > 0 {
		if cs.limiter, err = startConnLimiter(zctx, router, "client", cs.maxConns, cs.connsCut, cs.curveRefusals(), cs.log); err != nil {
			router.Close()
			return err
		}
	}
	if err := router.Bind(listen); err != nil {
		router.Close()
		cs.limiter.stop()
		return fmt.Errorf("broker: bind client port %s: %w (is another broker running, or the port taken?)", listen, err)
	}
	w, err := newSocketWaiter(router)
	if err != nil {
		router.Close()
		cs.limiter.stop()
		return err
	}
	cs.router, cs.waiter, cs.replies = router, w, &replyQueue{wake: w.interrupt}
	return nil
}

// close releases what newClientServer made, for a broker that stops
// before run.
func (cs *clientServer) close() {
	cs.waiter.close()
	cs.router.Close()
	cs.limiter.stop()
}

// curveRefusals is the refusal log when CURVE is on, else nil.
func (cs *clientServer) curveRefusals() *refusalLog {
	if cs.curveSecret == "" {
		return nil
	}
	return cs.curveLog
}

// run serves until done is closed and the node loop has closed its end
// (signalled by nodeDone), then flushes the last replies and closes.
func (cs *clientServer) run(nodeDone <-chan struct{}) {
	// The socket closes before its limiter stops: its monitor must never
	// wait on a reader that is gone.
	defer cs.limiter.stop()
	defer cs.router.Close()
	defer cs.waiter.close()
	// Wake when a client's request may be waiting, a reply is queued, or
	// the node loop is done.
	exited := make(chan struct{})
	defer close(exited)
	go func() {
		select {
		case <-nodeDone:
			cs.waiter.interrupt()
		case <-exited:
		}
	}()
	var sockErr error
	ready := func() bool {
		if cs.replies.waiting() {
			return true
		}
		select {
		case <-nodeDone:
			return true
		default:
		}
		ev, err := cs.router.GetEvents()
		if err != nil {
			sockErr = err
			return true
		}
		return ev&zmq.POLLIN != 0
	}
	for {
		cs.readRequests()
		cs.forwardReplies()
		select {
		case <-nodeDone:
			cs.forwardReplies()
			return
		default:
		}
		if _, err := cs.waiter.wait(clientPollInterval, ready); err != nil {
			cs.log.Error().Err(err).Msg("cannot wait for the client socket")
			return
		}
		if errors.Is(sockErr, zmq.ETERM) {
			return
		}
		sockErr = nil
	}
}

func (cs *clientServer) readRequests() {
	for {
		frames, err := cs.router.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			return
		}
		// REQ clients send [identity, "", payload]; plain DEALERs may send
		// [identity, payload]. Answer each in the shape it asked.
		var route [][]byte
		var payload []byte
		switch {
		case len(frames) == 3 && len(frames[1]) == 0:
			route, payload = frames[:2], frames[2]
		case len(frames) == 2:
			route, payload = frames[:1], frames[1]
		default:
			route = frames[:1]
			if len(frames) > 1 && len(frames[1]) == 0 {
				route = frames[:2]
			}
			// Not one JSON object: a course request by the dialect rule.
			cs.reply(replyTo{frames: route, dialect: wire.DialectCourse, kind: metrics.KindInvalid, start: time.Now()},
				wire.ErrorResponse(wire.ErrBadRequest, fmt.Sprintf("expected one frame with a JSON object, got %d frames", len(frames)-len(route))))
			continue
		}
		cs.handle(route, payload)
	}
}

func (cs *clientServer) handle(frames [][]byte, payload []byte) {
	start := time.Now()
	req, derr := wire.DecodeRequest(payload, cs.limits)
	route := replyTo{frames: frames, dialect: req.Dialect, kind: metrics.KindOf(req.Type, req.Method), start: start}
	if derr != nil {
		cs.reply(route, wire.ErrorResponse(derr.Code, derr.Detail))
		return
	}
	switch {
	case req.Type == wire.TypeStatus:
		cs.metrics.ObserveRequest(route.kind, metrics.OutcomeOK, time.Since(start))
		cs.replyJSON(route.frames, cs.status())
		return
	case cs.stopping.Load():
		cs.reply(route, wire.ErrorResponse(wire.ErrShuttingDown, "this broker is stopping; send the request to another broker"))
		return
	case cs.pending.Load() >= int64(cs.maxPend):
		cs.reply(route, wire.ErrorResponse(wire.ErrOverloaded, fmt.Sprintf("%d requests are already waiting on this broker; retry shortly", cs.maxPend)))
		return
	}
	now := time.Now()
	cr := clientRequest{route: route.clone(), req: req, arrived: now, deadline: now.Add(cs.timeout)}
	cs.pending.Add(1)
	select {
	case cs.toNode <- cr:
	default:
		cs.pending.Add(-1)
		cs.reply(route, wire.ErrorResponse(wire.ErrOverloaded, "the broker's request queue is full; retry shortly"))
	}
}

// forwardReplies moves replies from the node loop to their clients.
func (cs *clientServer) forwardReplies() {
	batch := cs.replies.take()
	for i, frames := range batch {
		cs.pending.Add(-1)
		if _, err := cs.router.SendMessageDontwait(frames); err != nil {
			cs.log.Debug().Err(err).Msg("reply dropped: client gone")
		}
		batch[i] = nil
	}
	cs.replies.recycle(batch)
}

func (cs *clientServer) reply(to replyTo, resp wire.Response) {
	// Counted before it leaves, so a client that scrapes after its answer
	// sees it.
	cs.metrics.ObserveRequest(to.kind, metrics.OutcomeOf(resp), time.Since(to.start))
	cs.replyJSON(to.frames, cs.refusals.shape(to, resp))
}

func (cs *clientServer) replyJSON(route [][]byte, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("broker: marshal reply %#v: %v", v, err))
	}
	parts := make([]any, 0, len(route)+1)
	for _, f := range route {
		parts = append(parts, f)
	}
	parts = append(parts, b)
	if _, err := cs.router.SendMessageDontwait(parts...); err != nil {
		cs.log.Debug().Err(err).Msg("reply dropped: client gone")
	}
}

// replyQueue carries replies (ZeroMQ frames: route, then the JSON) from
// the node loop to the client server. It never blocks the node loop; the
// client server's pending limit bounds it. (It replaced an inproc PUSH/PULL
// pair: two cgo calls and a cross-thread signal per reply.)
type replyQueue struct {
	mu    sync.Mutex
	q     [][][]byte
	spare [][][]byte
	wake  func() // called when q becomes non-empty
}

func (q *replyQueue) put(frames [][]byte) {
	q.mu.Lock()
	q.q = append(q.q, frames)
	first := len(q.q) == 1
	q.mu.Unlock()
	if first {
		q.wake()
	}
}

// waiting says whether a reply is queued.
func (q *replyQueue) waiting() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.q) > 0
}

// take returns every queued reply; hand the slice back with recycle.
func (q *replyQueue) take() [][][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.q
	q.q, q.spare = q.spare[:0], nil
	return b
}

func (q *replyQueue) recycle(b [][][]byte) {
	q.mu.Lock()
	q.spare = b[:0]
	q.mu.Unlock()
}

// replier is the node loop's end of the reply queue.
type replier struct {
	q        *replyQueue
	log      zerolog.Logger
	refusals *refusals
	metrics  *metrics.Metrics
}

func newReplier(q *replyQueue, ref *refusals, m *metrics.Metrics) *replier {
	return &replier{q: q, refusals: ref, metrics: m}
}

// send answers a request in its dialect and counts it.
func (r *replier) send(to replyTo, resp wire.Response) {
	r.metrics.ObserveRequest(to.kind, metrics.OutcomeOf(resp), time.Since(to.start))
	r.sendJSON(to, r.refusals.shape(to, resp))
}

// sendJSON sends a reply as it is.
func (r *replier) sendJSON(to replyTo, resp any) {
	route := to.frames
	b, err := json.Marshal(resp)
	if err != nil {
		panic(fmt.Sprintf("broker: marshal reply %#v: %v", resp, err))
	}
	frames := make([][]byte, 0, len(route)+1)
	frames = append(frames, route...)
	r.q.put(append(frames, b))
}

// close is called once the node loop has sent its last reply.
func (r *replier) close() {}
