package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/raftmq/raftmq/broker/wire"
)

// fakeServer answers every request with answer(n, request) on a ROUTER
// socket at a free 127.0.0.1 port, until the test ends.
func fakeServer(t *testing.T, answer func(n int, req wire.Request) string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	sock, err := zmq.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	if err := sock.Bind("tcp://" + addr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sock.Close()
		p := zmq.NewPoller()
		p.Add(sock, zmq.POLLIN)
		for n := 0; ctx.Err() == nil; {
			if polled, _ := p.Poll(20 * time.Millisecond); len(polled) == 0 {
				continue
			}
			parts, err := sock.RecvMessageBytes(0)
			if err != nil || len(parts) != 3 {
				continue
			}
			req, _ := wire.DecodeRequest(parts[2], wire.Limits{MaxRequestBytes: 1 << 20, MaxMessageBytes: 1 << 20, MaxTopicBytes: 1 << 10, MaxClientIDBytes: 1 << 10})
			n++
			_, _ = sock.SendMessage(parts[0], "", answer(n, req))
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return addr
}

func TestWClient(t *testing.T) {
	same := func(int, wire.Request) string { return `{"success":true,"message":"m"}` }
	tests := []struct {
		name         string
		dropPct      int
		answer       func(n int, req wire.Request) string
		wantSuccess  bool
		wantMessage  string
		wantMismatch bool
		wantDropped  int
	}{
		{"answer", 0, same, true, "m", false, 0},
		{"dropped reply, same answer on resend", 100, same, true, "m", false, 1},
		{"dropped reply, another answer on resend: exactly-once violation", 100,
			func(n int, _ wire.Request) string { return fmt.Sprintf(`{"success":true,"message":"m%d"}`, n) }, true, "m2", true, 1},
		{"no leader twice, then empty", 0, func(n int, _ wire.Request) string {
			if n < 3 {
				return `{"success":false,"error":"no_leader","detail":"election"}`
			}
			return `{"success":false}`
		}, false, "", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var seqs []uint64
			addr := fakeServer(t, func(n int, req wire.Request) string {
				mu.Lock()
				seqs = append(seqs, req.Seq)
				mu.Unlock()
				return tt.answer(n, req)
			})
			c := newWClient("c1", []string{addr}, rand.New(rand.NewPCG(1, 2)), tt.dropPct)
			defer c.close()
			_, frame := c.next(wire.Request{Type: "message", Method: "GET", Topic: "t"})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res := c.send(ctx, frame)
			if !res.ok || res.reply.Success != tt.wantSuccess || (res.reply.Message != nil) != (tt.wantMessage != "") ||
				(res.reply.Message != nil && *res.reply.Message != tt.wantMessage) || res.dropped != tt.wantDropped {
				t.Fatalf("result %+v (message %v), want success %v message %q dropped %d", res, res.reply.Message, tt.wantSuccess, tt.wantMessage, tt.wantDropped)
			}
			if got := len(c.retryMismatch) > 0; got != tt.wantMismatch {
				t.Fatalf("mismatch recorded = %v (%q), want %v", got, c.retryMismatch, tt.wantMismatch)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range seqs {
				if s != 1 {
					t.Fatalf("a resend used seq %d; every attempt must reuse seq 1 (%v)", s, seqs)
				}
			}
		})
	}
}

// TestWClientFollowsLeaderHint: a not_leader reply with a hint is followed
// at once, and the leader is remembered for the next request.
func TestWClientFollowsLeaderHint(t *testing.T) {
	leader := fakeServer(t, func(int, wire.Request) string { return `{"success":true}` })
	follower := fakeServer(t, func(int, wire.Request) string {
		return `{"success":false,"error":"not_leader","leader":"` + leader + `"}`
	})
	c := newWClient("c2", []string{follower}, rand.New(rand.NewPCG(3, 4)), 0)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, frame := c.next(wire.Request{Type: "topic", Method: "PUT", Topic: "t"})
	if res := c.send(ctx, frame); !res.ok || res.server != leader || !strings.Contains(string(frame), `"seq":1`) {
		t.Fatalf("result %+v, want success from the leader %s", res, leader)
	}
	if c.leader != leader {
		t.Fatalf("remembered leader %q, want %q", c.leader, leader)
	}
}
