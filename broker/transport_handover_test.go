package broker

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/raftlog"
)

// TestPeerReconnectTakesOver: a peer whose old connection still lingers
// (the process was paused, or its end broke first) reconnects with the same
// identity, its node id. Its frames on the new connection must reach this
// node. Without ZMQ_ROUTER_HANDOVER libzmq ignores the second connection
// while the first is open, and the peer goes unheard for good: a follower
// paused by the chaos suite never heard its new leader again (combo-5,
// seed 506, about one run in three).
func TestPeerReconnectTakesOver(t *testing.T) {
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	ports := freePorts(t, 2)
	listen := fmt.Sprintf("tcp://127.0.0.1:%d", ports[0])
	tr, err := newZMQTransport(zctx, "c", 1, listen, map[uint64]string{2: fmt.Sprintf("127.0.0.1:%d", ports[1])}, peerLimits{}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	dial := func() *zmq.Socket {
		d, err := zctx.NewSocket(zmq.DEALER)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.SetLinger(0); err != nil {
			t.Fatal(err)
		}
		if err := d.SetIdentity(strconv.Itoa(2)); err != nil {
			t.Fatal(err)
		}
		if err := d.Connect(listen); err != nil {
			t.Fatal(err)
		}
		return d
	}
	heartbeat := func(term uint64) []byte {
		return encodeFrame("c", 2, raftlog.Message{Type: raftlog.MsgHeartbeat, From: 2, To: 1, Term: term})
	}
	// heard sends frames from d until one with term arrives.
	heard := func(d *zmq.Socket, term uint64) bool {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := d.SendBytes(heartbeat(term), zmq.DONTWAIT); err != nil && err != zmq.Errno(11) {
				t.Fatal(err)
			}
			select {
			case m := <-tr.Recv():
				if m.Term == term {
					return true
				}
			case <-time.After(50 * time.Millisecond):
			}
		}
		return false
	}
	old := dial()
	defer old.Close()
	if !heard(old, 1) {
		t.Fatal("the first connection's frames never arrived")
	}
	// The old connection stays open, as a lingering one would.
	fresh := dial()
	defer fresh.Close()
	if !heard(fresh, 2) {
		t.Fatal("frames on the peer's new connection never arrived while its old one lingered")
	}
}
