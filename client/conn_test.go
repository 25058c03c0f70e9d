package client

import (
	"errors"
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client/clienttest"
)

// TestSnapshot: Snapshot asks the one server named, once, without a
// session, and returns the index it answered; a refusal is a ServerError.
func TestSnapshot(t *testing.T) {
	a := clienttest.NewBroker(t, clienttest.Step{Reply: `{"success":true,"index":42}`})
	b := clienttest.NewBroker(t, clienttest.Step{Reply: `{"success":false,"error":"internal","detail":"disk"}`})
	c, _ := newTestClient(t, Options{Servers: []string{a.Addr, b.Addr}})
	idx, err := c.Snapshot(ctxTimeout(t, 10*time.Second), a.Addr)
	if err != nil || idx != 42 {
		t.Fatalf("Snapshot = %d, %v; want 42", idx, err)
	}
	if r := a.Requests(); len(r) != 1 || r[0].Req.Type != wire.TypeSnapshot || r[0].Req.Method != wire.MethodPut || r[0].Req.HasSession {
		t.Fatalf("snapshot request %+v", r)
	}
	var se *ServerError
	if _, err := c.Snapshot(ctxTimeout(t, 10*time.Second), b.Addr); !errors.As(err, &se) || se.Code != "internal" || se.Server != b.Addr {
		t.Fatalf("refused snapshot: err = %v; want a ServerError internal from %s", err, b.Addr)
	}
	if n := len(b.Requests()); n != 1 {
		t.Fatalf("refused snapshot was sent %d times; want once", n)
	}
}

// TestConnDo: a Conn returns any decoded reply, refusals included, and is
// closed after its first failure so a late reply cannot answer later.
func TestConnDo(t *testing.T) {
	a := clienttest.NewBroker(t,
		clienttest.Step{Reply: `{"success":false,"error":"not_leader","leader":"x:1"}`},
		clienttest.Step{Drop: true})
	cn, err := Dial(a.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	frame := wire.EncodeRequest(wire.Request{Type: wire.TypeTopic, Method: wire.MethodGet, ClientID: "c"})
	resp, err := cn.Do(ctxTimeout(t, 10*time.Second), frame, time.Second, 5*time.Second)
	if err != nil || !resp.Refused() || resp.Error != wire.ErrNotLeader || resp.Leader != "x:1" || cn.Server() != a.Addr {
		t.Fatalf("Do = %+v, %v; want the not_leader refusal", resp, err)
	}
	if _, err := cn.Do(ctxTimeout(t, 10*time.Second), frame, time.Second, 100*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("dropped request: err = %v; want ErrTimeout", err)
	}
	if _, err := cn.Do(ctxTimeout(t, 10*time.Second), frame, time.Second, time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("after a failure: err = %v; want ErrClosed", err)
	}

	dead, err := Dial(clienttest.DeadAddr(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	if _, err := dead.Do(ctxTimeout(t, 10*time.Second), frame, 100*time.Millisecond, time.Second); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("dead server: err = %v; want ErrUnreachable", err)
	}
}
