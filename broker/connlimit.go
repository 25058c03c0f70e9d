package broker

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/rs/zerolog"
)

// connLimiter caps the TCP connections a listening ZeroMQ socket holds at
// once. libzmq has no such option, and each connection may buffer up to
// ZMQ_MAXMSGSIZE bytes of a half-received frame, so without a cap memory
// grows with the number of connections. The limiter owns a monitor of the
// socket: it counts ACCEPTED and DISCONNECTED events and shuts down (at the
// TCP level) each connection accepted beyond the cap, which makes libzmq
// drop it and free its buffers, usually before its ZMTP handshake ends.
//
// When refusals is set (CURVE on), the limiter also reports failed
// handshakes (a plaintext peer, a peer that does not know this node's
// public key) with the peer's address: libzmq reports a handshake failure
// and then, at once and from the same I/O thread, the DISCONNECTED of that
// connection's descriptor, whose address the limiter read when it was
// accepted. Refusals by the ZAP handler are logged there, with the key.
//
// Known limit: a descriptor closed and reused before the limiter sees its
// ACCEPTED event could cut a newer connection; that connection redials.
type connLimiter struct {
	name  string
	limit int
	cut   *atomic.Uint64
	log   zerolog.Logger
	mon   *zmq.Socket
	// refusals logs failed CURVE handshakes; nil when CURVE is off.
	refusals *refusalLog
	owner    socketOwner
}

// limiterSeq makes monitor endpoints unique within a process.
var limiterSeq atomic.Uint64

// startConnLimiter monitors sock (not yet bound, so that no connection is
// missed) and starts the limiter's goroutine. cut, if not nil, counts the
// connections shut down.
func startConnLimiter(zctx *zmq.Context, sock *zmq.Socket, name string, limit int, cut *atomic.Uint64, refusals *refusalLog, log zerolog.Logger) (*connLimiter, error) {
	if cut == nil {
		cut = new(atomic.Uint64)
	}
	endpoint := fmt.Sprintf("inproc://raftmq-connlimit-%s-%d", name, limiterSeq.Add(1))
	events := zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED
	if refusals != nil {
		events |= zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
	}
	if err := sock.Monitor(endpoint, events); err != nil {
		return nil, fmt.Errorf("broker: monitor %s socket: %w", name, err)
	}
	mon, err := zctx.NewSocket(zmq.PAIR)
	if err == nil {
		err = mon.SetLinger(0)
	}
	if err == nil {
		err = mon.Connect(endpoint)
	}
	if err != nil {
		if mon != nil {
			mon.Close()
		}
		return nil, fmt.Errorf("broker: monitor %s socket: %w", name, err)
	}
	l := &connLimiter{name: name, limit: limit, cut: cut, log: log, mon: mon, refusals: refusals}
	l.owner.start(mon, l.onEvents())
	return l, nil
}

// stop ends the limiter and closes its monitor socket. Safe on nil and
// more than once.
func (l *connLimiter) stop() {
	if l == nil {
		return
	}
	l.owner.stop()
}

// onEvents returns what the limiter does each time its monitor socket is
// readable: it reads every event queued and keeps the state they build.
func (l *connLimiter) onEvents() func() {
	open := map[int]string{} // descriptors of live accepted connections → remote address (CURVE on)
	// failed is why the last handshake failed, until the DISCONNECTED of
	// its descriptor arrives; "" = none pending.
	var failed string
	var lastLog time.Time
	return func() {
		for {
			ev, _, fd, err := l.mon.RecvEvent(zmq.DONTWAIT)
			if err != nil {
				break
			}
			switch ev {
			case zmq.EVENT_ACCEPTED:
				if len(open) < l.limit {
					open[fd] = ""
					if l.refusals != nil {
						open[fd] = peerAddr(fd)
					}
					continue
				}
				// Over the cap: cut it. libzmq sees the connection fail and
				// reports it (DISCONNECTED), freeing what it buffered.
				_ = syscall.Shutdown(fd, syscall.SHUT_RDWR)
				l.cut.Add(1)
				if now := time.Now(); now.Sub(lastLog) > dropLogInterval {
					lastLog = now
					l.log.Warn().Str("port", l.name).Int("limit", l.limit).Uint64("refused_total", l.cut.Load()).
						Msg("connection refused: too many connections")
				}
			case zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
				// The connection closed mid-handshake. A plaintext peer
				// often ends this way: it sees the mechanism mismatch and
				// hangs up before this side does. So does a client that
				// gave up waiting while a broker restarted; the reason
				// says both.
				failed = reasonClosedInHandshake
			case zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
				failed = handshakeFailure(fd) // fd is the protocol error code here
			case zmq.EVENT_HANDSHAKE_FAILED_AUTH:
				failed = "zap" // logged by the ZAP handler, with the key
			case zmq.EVENT_DISCONNECTED, zmq.EVENT_CLOSED:
				addr, accepted := open[fd]
				delete(open, fd)
				if failed != "" && accepted && ev == zmq.EVENT_DISCONNECTED && failed != "zap" {
					l.refusals.refused(l.name, addr, failed, "")
				}
				if ev == zmq.EVENT_DISCONNECTED {
					failed = ""
				}
			}
		}
	}
}

// reasonClosedInHandshake is the refusal reason of a connection that
// closed during the CURVE handshake.
const reasonClosedInHandshake = "connection closed during the CURVE handshake: a plaintext peer, or one that gave up"

// handshakeFailure names a ZMQ_PROTOCOL_ERROR_* code for the log.
func handshakeFailure(code int) string {
	switch code {
	case 0x11000002: // ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
		return "plaintext (or another mechanism) on a CURVE port"
	case 0x11000001: // ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
		return "CURVE handshake does not decrypt: the peer does not use this node's public key"
	}
	return fmt.Sprintf("CURVE handshake failed: ZeroMQ protocol error 0x%x", code)
}
