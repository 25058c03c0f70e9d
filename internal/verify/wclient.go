package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client"
)

// Timeouts of the workload client. attemptTimeout is above the brokers'
// request timeout (see brokerArgs) so a slow commit is not re-proposed
// needlessly.
const (
	attemptTimeout = 2500 * time.Millisecond
	connectTimeout = 300 * time.Millisecond
	backoffMax     = 200 * time.Millisecond
)

// wclient is one workload session: a client_id, a seq, a connection to
// the server it last used. Not safe for concurrent use; each workload
// goroutine owns one. It can drop executed replies on purpose (dropPct) and
// resend the same frame, as a client whose reply was lost would: a retry
// policy client.Client does not offer, so it sends through client.Conn.
type wclient struct {
	id      string
	servers []string
	seq     uint64
	rng     *rand.Rand
	dropPct int
	curve   *client.Curve // nil: plaintext

	conn   *client.Conn // to the server last tried; nil after a failure
	leader string       // last server that executed a request

	// first is the executed answer to the current seq that was dropped on
	// purpose (nil if none): every later answer to that seq must equal it.
	first *wire.Response
	// retryMismatch records resends whose answer differed from the dropped
	// first answer: an exactly-once violation.
	retryMismatch []string
}

// result of one request.
type result struct {
	reply   wire.Response
	server  string // who executed it
	ok      bool   // an executed reply arrived
	dropped int    // executed replies discarded on purpose
	refusal string // last error code seen (for the log), "" = none
}

func newWClient(id string, servers []string, rng *rand.Rand, dropPct int) *wclient {
	return &wclient{id: id, servers: servers, rng: rng, dropPct: dropPct}
}

func (c *wclient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// next returns a new frame with the next seq for a state-changing request.
func (c *wclient) next(r wire.Request) (wire.Request, []byte) {
	c.seq++
	c.first = nil
	r.ClientID, r.Seq, r.HasSession = c.id, c.seq, true
	return r, wire.EncodeRequest(r)
}

// send sends frame (the current seq's) until a server executes it or ctx
// ends; it may be called again for the same frame. The first executed
// reply may be discarded (dropPct) and the frame resent to a random server,
// as after a lost reply; every later answer must equal the dropped one.
func (c *wclient) send(ctx context.Context, frame []byte) result {
	var res result
	target := c.leader
	if target == "" {
		target = c.servers[c.rng.IntN(len(c.servers))]
	}
	failures := 0
	for ctx.Err() == nil {
		rep, err := c.attempt(ctx, target, frame)
		// stale_receipt is an executed answer (kept in the session like any).
		if err == nil && (rep.Error == "" || rep.Error == wire.ErrStaleReceipt) {
			if c.first != nil && !sameAnswer(*c.first, rep) {
				c.retryMismatch = append(c.retryMismatch, fmt.Sprintf("%s: first answer %s, resend answered %s by %s",
					frame, describe(*c.first), describe(rep), target))
			}
			if c.first == nil && c.rng.IntN(100) < c.dropPct {
				r := rep
				c.first = &r
				res.dropped++
				c.close() // the reply is "lost": resend elsewhere, as after a timeout
				target = c.servers[c.rng.IntN(len(c.servers))]
				continue
			}
			c.leader = target
			res.reply, res.server, res.ok = rep, target, true
			return res
		}
		if err == nil {
			res.refusal = rep.Error
			if rep.Error == wire.ErrNotLeader && rep.Leader != "" && rep.Leader != target {
				target = rep.Leader
				continue
			}
			switch rep.Error {
			case wire.ErrNotLeader, wire.ErrNoLeader, wire.ErrTimeout, wire.ErrShuttingDown, wire.ErrOverloaded:
			default:
				// bad_request, stale_seq, internal...: never expected from
				// this workload; keep the request unresolved and say so.
				res.refusal = rep.Error + " (unexpected)"
			}
		}
		c.leader = ""
		target = c.servers[c.rng.IntN(len(c.servers))]
		d := min(backoffMax, 10*time.Millisecond<<min(failures, 5))
		failures++
		select {
		case <-ctx.Done():
		case <-time.After(d/2 + time.Duration(c.rng.Int64N(int64(d/2)+1))):
		}
	}
	return res
}

// sameAnswer is Response.Same, with two stale_receipt answers the same.
func sameAnswer(a, b wire.Response) bool {
	if a.Error == wire.ErrStaleReceipt || b.Error == wire.ErrStaleReceipt {
		return a.Error == b.Error
	}
	return a.Same(b)
}

func describe(r wire.Response) string {
	if r.Error != "" {
		return "{" + r.Error + "}"
	}
	if r.Receipt != nil && r.Message != nil {
		return fmt.Sprintf("{success:%v message:%q receipt:%s}", r.Success, *r.Message, *r.Receipt)
	}
	if r.Message != nil {
		return fmt.Sprintf("{success:%v message:%q}", r.Success, *r.Message)
	}
	return fmt.Sprintf("{success:%v}", r.Success)
}

// attempt sends frame to target and waits for one reply, through the
// client package's Conn. Any failure drops the connection, so a late reply
// cannot answer a later request.
func (c *wclient) attempt(ctx context.Context, target string, frame []byte) (wire.Response, error) {
	if c.conn != nil && c.conn.Server() != target {
		c.close()
	}
	if c.conn == nil {
		cn, err := client.Dial(target, c.curve)
		if err != nil {
			return wire.Response{}, err
		}
		c.conn = cn
	}
	rep, err := c.conn.Do(ctx, frame, connectTimeout, attemptTimeout)
	if err != nil {
		c.close()
		return wire.Response{}, err
	}
	return rep, nil
}
