// Package client is raftmq's Go client: it finds the leader, retries through
// elections and failures, and makes every state-changing request exactly-once
// with a per-client session (client_id, seq).
//
// A Client is safe for concurrent use; it runs one request at a time on its
// socket. Use one Client per goroutine that needs parallelism.
package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
)

// Client talks to a raftmq cluster.
type Client struct {
	opts    Options
	abortCh chan struct{} // closed by Close: aborts waits in progress
	once    sync.Once

	mu sync.Mutex
	// Guarded by mu.
	conn   *conn  // nil until the first request and after any failure
	leader string // last server that answered; "" = unknown
	next   int    // index into opts.Servers of the next server to try
	seq    uint64 // last seq used; the next state-changing request uses seq+1
	rng    *rand.Rand
	closed bool
	// sleep waits between attempts; tests replace it to record backoffs.
	sleep func(ctx context.Context, abort <-chan struct{}, d time.Duration) error
}

// New returns a Client. It connects lazily, on the first request.
func New(opts Options) (*Client, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Client{opts: o, abortCh: make(chan struct{}), rng: o.Rand, sleep: sleepCtx}, nil
}

// ClientID is the id sent with every request; state-changing ones add a
// seq to it.
func (c *Client) ClientID() string { return c.opts.ClientID }

// Servers returns the configured server list.
func (c *Client) Servers() []string { return append([]string(nil), c.opts.Servers...) }

// Close aborts a request in progress (it returns ErrClosed) and releases the
// socket. Later calls return ErrClosed.
func (c *Client) Close() error {
	c.once.Do(func() { close(c.abortCh) })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.conn.close()
	c.conn = nil
	return nil
}

// do sends req to the leader, retrying as the package doc says, and returns
// the reply of the attempt that was executed. Every request names its
// client_id, so the brokers answer in raftmq's dialect (error codes, not the
// course's bare {"success":false}); state-changing ones add the next seq.
func (c *Client) do(ctx context.Context, req wire.Request, mutates bool) (wire.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return wire.Response{}, ErrClosed
	}
	req.ClientID = c.opts.ClientID
	if mutates {
		c.seq++
		req.Seq, req.HasSession = c.seq, true
	}
	frame := wire.EncodeRequest(req)
	// A long-polling request may wait wait_ms before its answer.
	wait := time.Duration(req.WaitMs) * time.Millisecond
	ctx, cancel := c.withTimeout(ctx, wait)
	defer cancel()

	start := time.Now()
	target := c.leader
	if target == "" {
		target = c.nextServerLocked()
	}
	var lastErr error
	failures, redirects := 0, 0
	for attempts := 1; ; attempts++ {
		raw, err := c.attemptLocked(ctx, target, frame, wait)
		if err == nil {
			resp, derr := wire.DecodeResponse(raw)
			if derr != nil {
				err = fmt.Errorf("%w: from %s: %w", ErrBadResponse, target, derr)
			} else if !resp.Refused() {
				c.leader = target
				return resp, nil
			} else {
				se := &ServerError{Code: resp.Error, Detail: resp.Detail, Leader: resp.Leader, Server: target}
				switch resp.Error {
				case wire.ErrNotLeader:
					if resp.Leader != "" && redirects < len(c.opts.Servers) {
						redirects++
						lastErr, target = se, resp.Leader
						continue // follow the hint at once
					}
				case wire.ErrNoLeader, wire.ErrTimeout, wire.ErrShuttingDown, wire.ErrOverloaded:
				default:
					return wire.Response{}, se // bad_request, too_large, internal, stale_seq...
				}
				err = se
			}
		}
		if errors.Is(err, ErrClosed) {
			return wire.Response{}, err
		}
		outOfTime := ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
		if !outOfTime || (lastErr == nil && errors.Is(err, ErrUnreachable)) {
			lastErr = err
		}
		if outOfTime {
			return wire.Response{}, c.finalError(ctx, lastErr, attempts, start)
		}
		var se *ServerError
		if !(errors.As(err, &se) && se.Code == wire.ErrOverloaded) {
			target = c.nextServerLocked() // overloaded: same server, after a pause
		}
		c.leader = ""
		redirects = 0
		if err := c.sleep(ctx, c.abortCh, c.backoffLocked(failures)); err != nil {
			if errors.Is(err, ErrClosed) {
				return wire.Response{}, err
			}
			return wire.Response{}, c.finalError(ctx, lastErr, attempts, start)
		}
		failures++
	}
}

// attemptLocked sends frame to target over the cached conn (replacing it
// when it points elsewhere). Any failure drops the conn.
func (c *Client) attemptLocked(ctx context.Context, target string, frame []byte, wait time.Duration) ([]byte, error) {
	if c.conn != nil && c.conn.addr != target {
		c.conn.close()
		c.conn = nil
	}
	if c.conn == nil {
		cn, err := dial(target, c.opts.Curve)
		if err != nil {
			return nil, err
		}
		c.conn = cn
	}
	raw, err := c.conn.roundTrip(ctx, c.abortCh, frame, c.opts.ConnectTimeout, c.opts.AttemptTimeout+wait)
	if err != nil {
		c.conn.close()
		c.conn = nil
	}
	return raw, err
}

func (c *Client) nextServerLocked() string {
	s := c.opts.Servers[c.next%len(c.opts.Servers)]
	c.next = (c.next + 1) % len(c.opts.Servers)
	return s
}

// withTimeout applies Options.Timeout (plus a long poll's wait) unless ctx
// ends sooner.
func (c *Client) withTimeout(ctx context.Context, wait time.Duration) (context.Context, context.CancelFunc) {
	limit := c.opts.Timeout + wait
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= limit {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, limit)
}

// finalError explains why a request gave up: the sentinel that fits the
// last failure, how long it tried, and the last failure itself.
func (c *Client) finalError(ctx context.Context, lastErr error, attempts int, start time.Time) error {
	took := time.Since(start).Round(time.Millisecond)
	ctxErr := ctx.Err()
	if ctxErr == nil {
		ctxErr = context.DeadlineExceeded // the deadline passed; ctx.Err() can lag it
	}
	if errors.Is(ctxErr, context.Canceled) {
		if lastErr == nil {
			return fmt.Errorf("client: %w after %d attempts in %s", ctxErr, attempts, took)
		}
		return fmt.Errorf("client: %w after %d attempts in %s; last: %w", ctxErr, attempts, took, lastErr)
	}
	sentinel := ErrTimeout
	for _, s := range []error{ErrNoLeader, ErrShuttingDown, ErrUnreachable, ErrBadResponse} {
		if errors.Is(lastErr, s) {
			sentinel = s
			break
		}
	}
	if lastErr == nil {
		return fmt.Errorf("%w after %d attempts in %s: %w", sentinel, attempts, took, ctxErr)
	}
	return fmt.Errorf("%w after %d attempts in %s; last: %w", sentinel, attempts, took, lastErr)
}
