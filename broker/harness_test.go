package broker

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/config"
)

// freePorts returns n TCP ports that were free on 127.0.0.1 a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// testCluster builds the config of an n-node cluster on 127.0.0.1 with
// fast ticks, data under a test temp dir.
func testCluster(t testing.TB, n int) []config.Node {
	t.Helper()
	ports := freePorts(t, 2*n)
	var cl config.Cluster
	for i := 0; i < n; i++ {
		cl.Addresses = append(cl.Addresses, config.Address{IP: "127.0.0.1", Port: ports[2*i], InternalPort: ports[2*i+1]})
	}
	dir := t.TempDir()
	nodes := make([]config.Node, n)
	for i := range nodes {
		c := config.Default()
		c.ID = i
		c.Cluster = cl
		c.DataDir = dir + "/node" + string(rune('0'+i))
		c.TickInterval = 10 * time.Millisecond
		c.RequestTimeout = 3 * time.Second
		nodes[i] = c
	}
	return nodes
}

// running is a broker started by a test.
type running struct {
	b      *Broker
	cancel context.CancelFunc
	done   chan error
}

func startBroker(t testing.TB, cfg config.Node) *running {
	t.Helper()
	return startBrokerWith(t, cfg, nil)
}

// startBrokerWith lets a test adjust the Broker between New and Run.
func startBrokerWith(t testing.TB, cfg config.Node, adjust func(*Broker)) *running {
	t.Helper()
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	b, err := New(cfg, log)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	if adjust != nil {
		adjust(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{b: b, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- b.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop stops the broker gracefully and checks it stopped cleanly in time.
func (r *running) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("broker stopped with error: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("broker did not stop within 10s")
	}
}

// rawClient is a REQ socket speaking raw frames, to test the protocol
// byte for byte.
type rawClient struct {
	t    testing.TB
	sock *zmq.Socket
	addr string // "ip:port" dialed
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	s, err := zmq.NewSocket(zmq.REQ)
	if err != nil {
		t.Fatal(err)
	}
	s.SetLinger(0)
	s.SetRcvtimeo(5 * time.Second)
	if err := s.Connect("tcp://" + addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &rawClient{t: t, sock: s, addr: addr}
}

// roundTrip sends one frame and returns the reply decoded as a generic map.
func (c *rawClient) roundTrip(frame []byte) map[string]any {
	c.t.Helper()
	reply := c.raw(frame)
	var m map[string]any
	if err := json.Unmarshal(reply, &m); err != nil {
		c.t.Fatalf("reply %q is not a JSON object: %v", reply, err)
	}
	return m
}

func (c *rawClient) do(req string) map[string]any { return c.roundTrip([]byte(req)) }

// raw sends frame and returns the reply's bytes as they arrived.
func (c *rawClient) raw(frame []byte) []byte {
	c.t.Helper()
	if _, err := c.sock.SendBytes(frame, 0); err != nil {
		c.t.Fatalf("send: %v", err)
	}
	reply, err := c.sock.RecvBytes(0)
	if err != nil {
		c.t.Fatalf("no reply to %q: %v", frame, err)
	}
	return reply
}

func (c *rawClient) status() wire.Status {
	c.t.Helper()
	if _, err := c.sock.SendBytes([]byte(`{"type":"status","method":"GET"}`), 0); err != nil {
		c.t.Fatal(err)
	}
	reply, err := c.sock.RecvBytes(0)
	if err != nil {
		c.t.Fatal(err)
	}
	var st wire.Status
	if err := json.Unmarshal(reply, &st); err != nil {
		c.t.Fatalf("status %q: %v", reply, err)
	}
	return st
}
