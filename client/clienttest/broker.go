// Package clienttest provides a fake raftmq broker for tests of code that
// uses package client: a ZeroMQ ROUTER on 127.0.0.1 that answers from a
// script, or from a handler such as Memory.
package clienttest

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/raftmq/raftmq/broker/wire"
)

// Step is one answer of a Broker.
type Step struct {
	Reply string // JSON to answer with
	Drop  bool   // never answer this request (the client must time out)
	// Late is sent, before Reply, to every request dropped so far: a reply
	// arriving after the client gave up on it.
	Late string
}

// Seen is one request a Broker received.
type Seen struct {
	Identity string // the ROUTER identity of the sending socket
	Req      wire.Request
}

// Handler answers a request once the script has run out.
type Handler func(req wire.Request) Step

// Broker is a fake broker. It answers from its script first, then from its
// handler (by default {"error":"internal"}).
type Broker struct {
	t    testing.TB
	Addr string // "127.0.0.1:port"

	mu      sync.Mutex
	script  []Step
	handler Handler
	got     []Seen
	dropped [][]byte
	gotCh   chan struct{}

	stop chan struct{}
	done chan struct{}
}

// NewBroker starts a Broker; it stops at the end of the test.
func NewBroker(t testing.TB, script ...Step) *Broker {
	t.Helper()
	sock, err := zmq.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatalf("fake broker: %v", err)
	}
	if err := sock.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	if err := sock.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatalf("fake broker bind: %v", err)
	}
	ep, err := sock.GetLastEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	b := &Broker{t: t, Addr: strings.TrimPrefix(ep, "tcp://"), script: script,
		handler: func(wire.Request) Step {
			return Step{Reply: `{"success":false,"error":"internal","detail":"fake broker script exhausted"}`}
		},
		gotCh: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go b.serve(sock)
	t.Cleanup(b.Close)
	return b
}

// SetScript replaces the remaining script.
func (b *Broker) SetScript(script ...Step) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.script = script
}

// SetHandler sets what answers once the script has run out.
func (b *Broker) SetHandler(h Handler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handler = h
}

// Always answers every request after the script with st.
func Always(st Step) Handler { return func(wire.Request) Step { return st } }

// Requests returns the requests received so far, in order.
func (b *Broker) Requests() []Seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Seen(nil), b.got...)
}

// Got is signalled (without blocking, so signals may merge) on each request.
func (b *Broker) Got() <-chan struct{} { return b.gotCh }

// Close stops the broker; it is idempotent.
func (b *Broker) Close() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
}

func (b *Broker) serve(sock *zmq.Socket) {
	defer close(b.done)
	defer sock.Close()
	poller := zmq.NewPoller()
	poller.Add(sock, zmq.POLLIN)
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		polled, err := poller.Poll(10 * time.Millisecond)
		if err != nil {
			b.t.Errorf("fake broker poll: %v", err)
			return
		}
		if len(polled) == 0 {
			continue
		}
		parts, err := sock.RecvMessageBytes(0)
		if err != nil {
			b.t.Errorf("fake broker recv: %v", err)
			return
		}
		if len(parts) != 3 || len(parts[1]) != 0 {
			b.t.Errorf("fake broker: got %d frames %q, want identity, empty delimiter, JSON", len(parts), parts)
			continue
		}
		b.answer(sock, parts[0], parts[2])
	}
}

func (b *Broker) answer(sock *zmq.Socket, id, frame []byte) {
	req, derr := wire.DecodeRequest(frame, wire.Limits{})
	if derr != nil {
		b.t.Errorf("fake broker: client sent an invalid request %s: %v", frame, derr)
	}
	b.mu.Lock()
	b.got = append(b.got, Seen{Identity: string(id), Req: req})
	var st Step
	if len(b.script) > 0 {
		st, b.script = b.script[0], b.script[1:]
	} else {
		st = b.handler(req)
	}
	var late [][]byte
	if st.Late != "" {
		late, b.dropped = b.dropped, nil
	}
	if st.Drop {
		b.dropped = append(b.dropped, id)
	}
	b.mu.Unlock()
	select {
	case b.gotCh <- struct{}{}:
	default:
	}
	for _, lid := range late {
		if _, err := sock.SendMessage(lid, "", st.Late); err != nil {
			b.t.Errorf("fake broker send late: %v", err)
		}
	}
	if !st.Drop {
		if _, err := sock.SendMessage(id, "", st.Reply); err != nil {
			b.t.Errorf("fake broker send: %v", err)
		}
	}
}

// DeadAddr is an address where no broker answers: a TCP listener that never
// accepts, held until the test ends. A connection there never completes
// ZeroMQ's handshake, so a client sees it as unreachable. A closed port
// would not do: another process (tests run in parallel) may bind it, or a
// client may connect to itself through it, and both answer differently.
func DeadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}
