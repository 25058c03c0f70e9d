package broker

import (
	"errors"
	"fmt"
	"sync"
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
// Known limit: a descriptor closed and reused before the limiter sees its
// ACCEPTED event could cut a newer connection; that connection redials.
type connLimiter struct {
	name  string
	limit int
	cut   *atomic.Uint64
	log   zerolog.Logger
	mon   *zmq.Socket
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// limiterSeq makes monitor endpoints unique within a process.
var limiterSeq atomic.Uint64

const limiterPollInterval = 100 * time.Millisecond

// startConnLimiter monitors sock (not yet bound, so that no connection is
// missed) and starts the limiter's goroutine. cut, if not nil, counts the
// connections shut down.
func startConnLimiter(zctx *zmq.Context, sock *zmq.Socket, name string, limit int, cut *atomic.Uint64, log zerolog.Logger) (*connLimiter, error) {
	if cut == nil {
		cut = new(atomic.Uint64)
	}
	endpoint := fmt.Sprintf("inproc://raftmq-connlimit-%s-%d", name, limiterSeq.Add(1))
	if err := sock.Monitor(endpoint, zmq.EVENT_ACCEPTED|zmq.EVENT_DISCONNECTED|zmq.EVENT_CLOSED); err != nil {
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
	l := &connLimiter{name: name, limit: limit, cut: cut, log: log, mon: mon, done: make(chan struct{})}
	l.wg.Add(1)
	go l.run()
	return l, nil
}

// stop ends the limiter and closes its monitor socket. Safe on nil and
// more than once.
func (l *connLimiter) stop() {
	if l == nil {
		return
	}
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
}

func (l *connLimiter) run() {
	defer l.wg.Done()
	defer l.mon.Close()
	poller := zmq.NewPoller()
	poller.Add(l.mon, zmq.POLLIN)
	open := map[int]bool{} // descriptors of live accepted connections
	var lastLog time.Time
	for {
		select {
		case <-l.done:
			return
		default:
		}
		polled, err := poller.Poll(limiterPollInterval)
		if err != nil {
			if errors.Is(err, zmq.ETERM) {
				return
			}
			continue
		}
		if len(polled) == 0 {
			continue
		}
		for {
			ev, _, fd, err := l.mon.RecvEvent(zmq.DONTWAIT)
			if err != nil {
				break
			}
			switch ev {
			case zmq.EVENT_ACCEPTED:
				if len(open) < l.limit {
					open[fd] = true
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
			case zmq.EVENT_DISCONNECTED, zmq.EVENT_CLOSED:
				delete(open, fd)
			}
		}
	}
}
