package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/raftmq/raftmq/broker/wire"
)

// pollSlice is the longest a poll blocks before the wait checks the context
// and the Client's close channel again.
const pollSlice = 50 * time.Millisecond

// conn is one DEALER socket connected to one server. It frames requests like
// a REQ socket (empty delimiter, then the JSON) so a ROUTER broker treats
// both alike. A conn carries at most one outstanding request; after any
// failure it is closed, never reused, so a late reply dies with it.
type conn struct {
	addr    string // as given: "ip:port"
	curve   bool   // the connection uses CURVE
	sock    *zmq.Socket
	pollIn  *zmq.Poller
	pollOut *zmq.Poller
}

// endpoint turns "ip:port" into "tcp://ip:port"; full endpoints pass through.
func endpoint(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	return "tcp://" + addr
}

// dial connects to addr, through CURVE when curve is not nil.
func dial(addr string, curve *Curve) (*conn, error) {
	sock, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		return nil, fmt.Errorf("client: new socket: %w", err)
	}
	if curve != nil {
		if err := curve.Secure(sock, addr); err != nil {
			sock.Close()
			return nil, err
		}
	}
	// Linger 0: closing drops unsent requests at once. Immediate: queue only
	// on a completed connection, so "writable" means "connected".
	for _, set := range []func() error{
		func() error { return sock.SetLinger(0) },
		func() error { return sock.SetImmediate(true) },
		func() error { return sock.Connect(endpoint(addr)) },
	} {
		if err := set(); err != nil {
			sock.Close()
			return nil, fmt.Errorf("client: connect %s: %w", addr, err)
		}
	}
	c := &conn{addr: addr, curve: curve != nil, sock: sock, pollIn: zmq.NewPoller(), pollOut: zmq.NewPoller()}
	c.pollIn.Add(sock, zmq.POLLIN)
	c.pollOut.Add(sock, zmq.POLLOUT)
	return c, nil
}

func (c *conn) close() {
	if c != nil && c.sock != nil {
		_ = c.sock.Close()
		c.sock = nil
	}
}

// roundTrip sends one request and waits for its reply. Errors: ctx.Err(),
// ErrClosed, ErrUnreachable (no connection within connectTimeout), errNoReply
// (nothing within replyTimeout), ErrBadResponse, or a zmq error.
func (c *conn) roundTrip(ctx context.Context, abort <-chan struct{}, frame []byte, connectTimeout, replyTimeout time.Duration) ([]byte, error) {
	ok, err := wait(ctx, abort, c.pollOut, connectTimeout)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("%w: no connection to %s before the deadline: %w", ErrUnreachable, c.addr, err)
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		hint := ""
		if c.curve {
			// A refused CURVE handshake looks like no connection at all.
			hint = " (CURVE: is this client's public key allowed by the broker, and the broker's key in the cluster file right?)"
		}
		return nil, fmt.Errorf("%w: no connection to %s within %s%s", ErrUnreachable, c.addr, connectTimeout, hint)
	}
	if _, err := c.sock.SendMessageDontwait("", frame); err != nil {
		return nil, fmt.Errorf("%w: send to %s: %w", ErrUnreachable, c.addr, err)
	}
	ok, err = wait(ctx, abort, c.pollIn, replyTimeout)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: no reply from %s within %s", ErrTimeout, c.addr, replyTimeout)
	}
	parts, err := c.sock.RecvMessageBytes(zmq.DONTWAIT)
	if err != nil {
		return nil, fmt.Errorf("client: receive from %s: %w", c.addr, err)
	}
	if len(parts) != 2 || len(parts[0]) != 0 {
		return nil, fmt.Errorf("%w: %d frames from %s, want an empty delimiter and one JSON frame", ErrBadResponse, len(parts), c.addr)
	}
	return parts[1], nil
}

// wait polls until the poller's event, d elapses (false), ctx is done or
// abort is closed.
func wait(ctx context.Context, abort <-chan struct{}, p *zmq.Poller, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	ctxBound := false
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline, ctxBound = dl, true
	}
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		select {
		case <-abort:
			return false, ErrClosed
		default:
		}
		left := time.Until(deadline)
		if left <= 0 {
			if ctxBound {
				return false, context.DeadlineExceeded // ctx.Err() may lag its deadline by a moment
			}
			return false, nil
		}
		polled, err := p.Poll(min(left, pollSlice))
		if err != nil {
			return false, fmt.Errorf("client: poll: %w", err)
		}
		if len(polled) > 0 {
			return true, nil
		}
	}
}

// Conn is one connection to one server with no retry policy of its own: a
// program that needs its own (the fault-injection verifier resends a frame
// to servers it picks, and drops replies on purpose) sends through a Conn
// and still shares the Client's framing, polling and error kinds. Everything
// else uses a Client. A Conn carries one request at a time; after any error
// it is closed, so a late reply cannot answer a later request.
type Conn struct {
	cn    *conn
	abort chan struct{}
}

// Dial connects to server ("ip:port" or a full zmq endpoint), through
// CURVE when curve is not nil. The connection completes in the background;
// Do waits for it.
func Dial(server string, curve *Curve) (*Conn, error) {
	cn, err := dial(server, curve)
	if err != nil {
		return nil, err
	}
	return &Conn{cn: cn, abort: make(chan struct{})}, nil
}

// Server is the address the Conn was dialled with.
func (c *Conn) Server() string { return c.cn.addr }

// Do sends one encoded request (wire.EncodeRequest) and returns the decoded
// reply, refusals included (check Response.Refused). It waits at most
// connectTimeout for the connection and replyTimeout for the reply, or until
// ctx ends. Errors wrap ErrUnreachable, ErrTimeout, ErrBadResponse or
// ctx.Err(); after one the Conn is closed (ErrClosed from then on).
func (c *Conn) Do(ctx context.Context, frame []byte, connectTimeout, replyTimeout time.Duration) (wire.Response, error) {
	if c.cn.sock == nil {
		return wire.Response{}, ErrClosed
	}
	raw, err := c.cn.roundTrip(ctx, c.abort, frame, connectTimeout, replyTimeout)
	if err != nil {
		c.Close()
		return wire.Response{}, err
	}
	resp, err := wire.DecodeResponse(raw)
	if err != nil {
		c.Close()
		return wire.Response{}, fmt.Errorf("%w: from %s: %w", ErrBadResponse, c.cn.addr, err)
	}
	return resp, nil
}

// Close releases the socket. It is safe to call more than once.
func (c *Conn) Close() { c.cn.close() }
