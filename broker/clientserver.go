package broker

import (
	"encoding/json"
	"errors"
	"fmt"
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

// clientServer owns the client ROUTER socket and the PULL end of the reply
// channel. It decodes and validates requests, answers the ones it can
// (status, bad input, overload, shutting down) and hands the rest to the node
// loop, whose replies come back over an inproc socket.
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

	router *zmq.Socket
	pull   *zmq.Socket
}

const clientPollInterval = 50 * time.Millisecond

// newClientServer binds the client socket and the reply endpoint; run serves.
func newClientServer(zctx *zmq.Context, listen, replyEndpoint string, cs *clientServer) error {
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
	pull, err := zctx.NewSocket(zmq.PULL)
	if err == nil {
		err = pull.Bind(replyEndpoint)
	}
	if err != nil {
		router.Close()
		cs.limiter.stop()
		if pull != nil {
			pull.Close()
		}
		return fmt.Errorf("broker: reply socket: %w", err)
	}
	cs.router, cs.pull = router, pull
	return nil
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
	defer cs.pull.Close()
	poller := zmq.NewPoller()
	poller.Add(cs.router, zmq.POLLIN)
	poller.Add(cs.pull, zmq.POLLIN)
	for {
		select {
		case <-nodeDone:
			cs.forwardReplies()
			return
		default:
		}
		polled, err := poller.Poll(clientPollInterval)
		if err != nil {
			if errors.Is(err, zmq.ETERM) {
				return
			}
			continue
		}
		for _, p := range polled {
			if p.Socket == cs.router {
				cs.readRequests()
			} else {
				cs.forwardReplies()
			}
		}
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
	for {
		frames, err := cs.pull.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			return
		}
		cs.pending.Add(-1)
		if _, err := cs.router.SendMessageDontwait(frames); err != nil {
			cs.log.Debug().Err(err).Msg("reply dropped: client gone")
		}
	}
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

// replier is the node loop's end of the reply channel: a PUSH socket owned
// by the node goroutine.
type replier struct {
	push     *zmq.Socket
	log      zerolog.Logger
	refusals *refusals
	metrics  *metrics.Metrics
}

func newReplier(zctx *zmq.Context, endpoint string, ref *refusals, m *metrics.Metrics) (*replier, error) {
	push, err := zctx.NewSocket(zmq.PUSH)
	if err == nil {
		err = push.SetSndhwm(0) // bounded by the client server's pending limit
	}
	if err == nil {
		err = push.SetLinger(-1) // flush replies on close
	}
	if err == nil {
		err = push.Connect(endpoint)
	}
	if err != nil {
		if push != nil {
			push.Close()
		}
		return nil, fmt.Errorf("broker: reply socket: %w", err)
	}
	return &replier{push: push, refusals: ref, metrics: m}, nil
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
	parts := make([]any, 0, len(route)+1)
	for _, f := range route {
		parts = append(parts, f)
	}
	parts = append(parts, b)
	if _, err := r.push.SendMessage(parts...); err != nil {
		r.log.Error().Err(err).Msg("reply lost on the inproc channel")
	}
}

func (r *replier) close() { r.push.Close() }
