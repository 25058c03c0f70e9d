package client

import (
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/raftmq/raftmq/broker/wire"
)

// step is one scripted answer of a fakeBroker.
type step struct {
	reply string // JSON to answer with
	drop  bool   // never answer this request (the client must time out)
	// late is sent, before reply, to every request dropped so far: a reply
	// arriving after the client gave up on it.
	late string
}

// seen is one request a fakeBroker received.
type seen struct {
	identity string
	req      wire.Request
}

// fakeBroker is a ZeroMQ ROUTER on 127.0.0.1 answering from a script. Once
// the script runs out it answers with fallback ({"error":"internal"} unless
// set).
type fakeBroker struct {
	t    *testing.T
	addr string // "127.0.0.1:port"

	mu       sync.Mutex
	script   []step
	fallback step
	got      []seen
	dropped  [][]byte
	gotCh    chan struct{} // signalled (non-blocking) on every request

	stop chan struct{}
	done chan struct{}
}

func newFakeBroker(t *testing.T, script ...step) *fakeBroker {
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
	f := &fakeBroker{t: t, addr: strings.TrimPrefix(ep, "tcp://"), script: script,
		fallback: step{reply: `{"success":false,"error":"internal","detail":"fake broker script exhausted"}`},
		gotCh:    make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go f.serve(sock)
	t.Cleanup(f.close)
	return f
}

func (f *fakeBroker) setScript(script ...step) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = script
}

func (f *fakeBroker) setFallback(st step) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fallback = st
}

func (f *fakeBroker) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.got...)
}

func (f *fakeBroker) close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

func (f *fakeBroker) serve(sock *zmq.Socket) {
	defer close(f.done)
	defer sock.Close()
	poller := zmq.NewPoller()
	poller.Add(sock, zmq.POLLIN)
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		polled, err := poller.Poll(10 * time.Millisecond)
		if err != nil {
			f.t.Errorf("fake broker poll: %v", err)
			return
		}
		if len(polled) == 0 {
			continue
		}
		parts, err := sock.RecvMessageBytes(0)
		if err != nil {
			f.t.Errorf("fake broker recv: %v", err)
			return
		}
		if len(parts) != 3 || len(parts[1]) != 0 {
			f.t.Errorf("fake broker: got %d frames %q, want identity, empty delimiter, JSON", len(parts), parts)
			continue
		}
		req, derr := wire.DecodeRequest(parts[2], wire.Limits{})
		if derr != nil {
			f.t.Errorf("fake broker: client sent an invalid request %s: %v", parts[2], derr)
		}
		f.mu.Lock()
		f.got = append(f.got, seen{identity: string(parts[0]), req: req})
		st := f.fallback
		if len(f.script) > 0 {
			st, f.script = f.script[0], f.script[1:]
		}
		var late [][]byte
		if st.late != "" {
			late, f.dropped = f.dropped, nil
		}
		if st.drop {
			f.dropped = append(f.dropped, parts[0])
		}
		f.mu.Unlock()
		select {
		case f.gotCh <- struct{}{}:
		default:
		}
		for _, id := range late {
			if _, err := sock.SendMessage(id, "", st.late); err != nil {
				f.t.Errorf("fake broker send late: %v", err)
			}
		}
		if !st.drop {
			if _, err := sock.SendMessage(parts[0], "", st.reply); err != nil {
				f.t.Errorf("fake broker send: %v", err)
			}
		}
	}
}

// deadAddr is an address where nothing listens: a fake broker, stopped.
func deadAddr(t *testing.T) string {
	f := newFakeBroker(t)
	f.close()
	return f.addr
}
