package broker

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/raftlog"
)

type keyPair struct{ public, secret string }

func newKeyPair(t testing.TB) keyPair {
	t.Helper()
	pub, sec, err := zmq.NewCurveKeypair()
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{pub, sec}
}

// curveCluster is testCluster with CURVE on: a key pair per node, and the
// given client policy on every node.
func curveCluster(t testing.TB, n int, clients config.CurveClients) ([]config.Node, []keyPair) {
	t.Helper()
	cfgs := testCluster(t, n)
	keys := make([]keyPair, n)
	for i := range keys {
		keys[i] = newKeyPair(t)
	}
	for i := range cfgs {
		addrs := append([]config.Address(nil), cfgs[i].Cluster.Addresses...)
		for j := range addrs {
			addrs[j].CurvePublic = keys[j].public
		}
		cfgs[i].Cluster.Addresses = addrs
		cfgs[i].CurveSecret = keys[i].secret
		cfgs[i].CurveClients = clients
	}
	return cfgs, keys
}

// curveClient is a client of cfgs' cluster holding key kp; serverKeys
// overrides the servers' public keys when not nil.
func curveClient(t testing.TB, cfgs []config.Node, kp *keyPair, serverKeys map[string]string) *client.Client {
	t.Helper()
	var servers []string
	keys := map[string]string{}
	for _, a := range cfgs[0].Cluster.Addresses {
		servers = append(servers, a.ClientAddr())
		keys[a.ClientAddr()] = a.CurvePublic
	}
	if serverKeys != nil {
		keys = serverKeys
	}
	o := client.Options{Servers: servers, Timeout: 2 * time.Second, AttemptTimeout: time.Second, ConnectTimeout: 300 * time.Millisecond}
	if kp != nil {
		o.Curve = &client.Curve{PublicKey: kp.public, SecretKey: kp.secret, ServerKeys: keys}
	}
	cl, err := client.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestCurveClientPort: with CURVE on, a listed client works; a plaintext
// client, an unlisted key, and a client that expects another server key get
// no session, and each refusal is counted.
func TestCurveClientPort(t *testing.T) {
	allowed := newKeyPair(t)
	cfgs, _ := curveCluster(t, 1, config.CurveClients{Keys: []string{allowed.public}})
	r := startBroker(t, cfgs[0])
	ctx := context.Background()

	good := curveClient(t, cfgs, &allowed, nil)
	if _, err := good.CreateTopic(ctx, "q"); err != nil {
		t.Fatalf("allowed client: create topic: %v", err)
	}
	if _, err := good.Put(ctx, "q", "m1"); err != nil {
		t.Fatalf("allowed client: put: %v", err)
	}
	if m, ok, err := good.Pop(ctx, "q"); err != nil || !ok || m != "m1" {
		t.Fatalf("allowed client: pop = %q, %v; want m1", m, err)
	}

	stranger := newKeyPair(t)
	otherServer := newKeyPair(t)
	addr := cfgs[0].Self().ClientAddr()
	refused := []struct {
		name string
		cl   *client.Client
	}{
		{"plaintext", curveClient(t, cfgs, nil, nil)},
		{"unlisted key", curveClient(t, cfgs, &stranger, nil)},
		{"wrong server key", curveClient(t, cfgs, &allowed, map[string]string{addr: otherServer.public})},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			before := r.b.curveLog.total.Load()
			_, err := tt.cl.Status(ctx, addr)
			if !errors.Is(err, client.ErrUnreachable) {
				t.Fatalf("status: %v, want ErrUnreachable (no session)", err)
			}
			if _, err := tt.cl.Put(ctx, "q", "intruder"); err == nil {
				t.Fatalf("put succeeded")
			}
			testwait.For(t, 5*time.Second, "the refusal counted", func() bool { return r.b.curveLog.total.Load() > before })
		})
	}
	if st, err := good.Status(ctx, addr); err != nil || st.CurveConnsRefused < uint64(len(refused)) {
		t.Fatalf("status: curve_connections_refused %d (%v), want at least %d", st.CurveConnsRefused, err, len(refused))
	}
	// Nothing a refused client sent arrived.
	if m, ok, err := good.Pop(ctx, "q"); err != nil || ok {
		t.Fatalf("pop after the refused clients: %q, %v, %v; want the queue empty", m, ok, err)
	}
}

// TestCurveNoClientsFile: CURVE on without a clients file admits no client,
// not even one with a key pair.
func TestCurveNoClientsFile(t *testing.T) {
	cfgs, _ := curveCluster(t, 1, config.CurveClients{})
	startBroker(t, cfgs[0])
	kp := newKeyPair(t)
	if _, err := curveClient(t, cfgs, &kp, nil).Status(context.Background(), cfgs[0].Self().ClientAddr()); !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("status: %v, want ErrUnreachable", err)
	}
}

// TestCurveAnyClient: "*" admits any key pair, never plaintext.
func TestCurveAnyClient(t *testing.T) {
	cfgs, _ := curveCluster(t, 1, config.CurveClients{Any: true})
	startBroker(t, cfgs[0])
	kp := newKeyPair(t)
	ctx := context.Background()
	addr := cfgs[0].Self().ClientAddr()
	if _, err := curveClient(t, cfgs, &kp, nil).Status(ctx, addr); err != nil {
		t.Fatalf("any key: %v", err)
	}
	if _, err := curveClient(t, cfgs, nil, nil).Status(ctx, addr); !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("plaintext: %v, want ErrUnreachable", err)
	}
}

// TestCurveStrangerOnPeerPort: a stranger on the leader's peer port,
// plaintext or with a key pair that is not a member's, sends a heartbeat
// of a much higher term in a follower's name; with CURVE it is refused
// before any frame arrives, and the leader and its term stay. The control
// subtest shows the same stranger moves the term of a plaintext cluster,
// so the check can fail.
func TestCurveStrangerOnPeerPort(t *testing.T) {
	clientKey := newKeyPair(t)
	cfgs, keys := curveCluster(t, 3, config.CurveClients{Keys: []string{clientKey.public}})
	nodes := make([]*running, 3)
	for i, cfg := range cfgs {
		nodes[i] = startBroker(t, cfg)
	}
	cl := curveClient(t, cfgs, &clientKey, nil)
	lead, term := waitLeaderTerm(t, cl, cfgs)
	leadCfg := cfgs[lead]
	stranger := newKeyPair(t)
	for _, tt := range []struct {
		name string
		kp   *keyPair
	}{{"plaintext", nil}, {"non-member key", &stranger}} {
		t.Run(tt.name, func(t *testing.T) {
			before := nodes[lead].b.curveLog.total.Load()
			d := strangerDealer(t, leadCfg.Self().PeerAddr(), tt.kp, keys[lead].public)
			sendHigherTermHeartbeat(t, d, leadCfg, lead, term)
			testwait.For(t, 5*time.Second, "the stranger refused", func() bool { return nodes[lead].b.curveLog.total.Load() > before })
			if l, tm := waitLeaderTerm(t, cl, cfgs); l != lead || tm != term {
				t.Fatalf("after the stranger: leader %d term %d, want leader %d term %d", l, tm, lead, term)
			}
		})
	}
	t.Run("control: without CURVE the same stranger moves the term", func(t *testing.T) {
		plain := testCluster(t, 3)
		for _, cfg := range plain {
			startBroker(t, cfg)
		}
		pc := curveClient(t, plain, nil, nil)
		pl, pt := waitLeaderTerm(t, pc, plain)
		d := strangerDealer(t, plain[pl].Self().PeerAddr(), nil, "")
		sendHigherTermHeartbeat(t, d, plain[pl], pl, pt)
		testwait.For(t, 5*time.Second, "the leader's term to move", func() bool {
			st, err := pc.Status(context.Background(), plain[pl].Self().ClientAddr())
			return err == nil && st.Term > pt
		})
	})
}

// waitLeaderTerm waits until every node names the same leader in the same
// term and returns them.
func waitLeaderTerm(t *testing.T, cl *client.Client, cfgs []config.Node) (int, uint64) {
	t.Helper()
	lead, term := -1, uint64(0)
	testwait.For(t, 10*time.Second, "one leader followed by all", func() bool {
		lead, term = -1, 0
		for i, cfg := range cfgs {
			st, err := cl.Status(context.Background(), cfg.Self().ClientAddr())
			if err != nil || st.LeaderID == nil {
				return false
			}
			if i == 0 {
				lead, term = *st.LeaderID, st.Term
			} else if *st.LeaderID != lead || st.Term != term {
				return false
			}
		}
		return true
	})
	return lead, term
}

// strangerDealer connects a DEALER to a peer port, plaintext (kp nil) or as
// a CURVE client with key pair kp of the server key serverKey.
func strangerDealer(t *testing.T, peerAddr string, kp *keyPair, serverKey string) *zmq.Socket {
	t.Helper()
	d, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.SetLinger(0)
	if kp != nil {
		if err := dialCurve(d, serverKey, kp.public, kp.secret); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Connect("tcp://" + peerAddr); err != nil {
		t.Fatal(err)
	}
	return d
}

// sendHigherTermHeartbeat queues, on d, a heartbeat of term+100 to the
// leader in the name of another member: if it reached the leader's core,
// the leader would follow it.
func sendHigherTermHeartbeat(t *testing.T, d *zmq.Socket, leadCfg config.Node, lead int, term uint64) {
	t.Helper()
	from := raftID((lead + 1) % len(leadCfg.Cluster.Addresses))
	hb := raftlog.Message{Type: raftlog.MsgHeartbeat, From: from, To: raftID(lead), Term: term + 100}
	if _, err := d.SendBytes(encodeFrame(leadCfg.Cluster.ID(), from, hb), zmq.DONTWAIT); err != nil {
		t.Fatal(err)
	}
}

// TestCurveSecretMustMatchClusterFile: a node given another node's secret
// key refuses to start and names both keys.
func TestCurveSecretMustMatchClusterFile(t *testing.T) {
	cfgs, keys := curveCluster(t, 2, config.CurveClients{})
	cfg := cfgs[0]
	cfg.CurveSecret = keys[1].secret
	_, err := New(cfg, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "belongs to public key \""+keys[1].public) || !strings.Contains(err.Error(), keys[0].public) {
		t.Fatalf("New with node 1's secret as node 0: %v", err)
	}
}

func TestDecide(t *testing.T) {
	a, b := newKeyPair(t), newKeyPair(t)
	raw := func(k string) [][]byte { return [][]byte{[]byte(zmq.Z85decode(k))} }
	policies := map[string]zapPolicy{
		zapDomainPeer:   newZapPolicy(false, a.public),
		zapDomainClient: newZapPolicy(true),
	}
	tests := []struct {
		name, domain, mech string
		creds              [][]byte
		ok                 bool
		reason             string
	}{
		{"member", zapDomainPeer, "CURVE", raw(a.public), true, ""},
		{"non-member", zapDomainPeer, "CURVE", raw(b.public), false, "public key not allowed"},
		{"any client", zapDomainClient, "CURVE", raw(b.public), true, ""},
		{"plain mechanism", zapDomainClient, "PLAIN", [][]byte{[]byte("user"), []byte("pw")}, false, "mechanism PLAIN"},
		{"null mechanism", zapDomainClient, "NULL", nil, false, "mechanism NULL"},
		{"unknown domain", "other", "CURVE", raw(a.public), false, "unknown ZAP domain"},
		{"short key", zapDomainPeer, "CURVE", [][]byte{[]byte("short")}, false, "no 32-byte"},
	}
	for _, tt := range tests {
		d := decide(policies, tt.domain, tt.mech, tt.creds)
		if d.ok != tt.ok || !strings.Contains(d.reason, tt.reason) {
			t.Errorf("%s: %+v, want ok=%v reason %q", tt.name, d, tt.ok, tt.reason)
		}
	}
}

// TestRefusalLogOncePerInterval: one line per address per interval, the
// next line says how many were not logged; other addresses log at once.
func TestRefusalLogOncePerInterval(t *testing.T) {
	var out bytes.Buffer
	r := newRefusalLog(nil, zerolog.New(&out))
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	steps := []struct {
		addr   string
		after  time.Duration
		logged bool
	}{
		{"10.0.0.1:5000", 0, true},
		{"10.0.0.1:5001", time.Second, false}, // same ip, new port
		{"10.0.0.1:5002", time.Second, false},
		{"10.0.0.2:5000", 0, true},
		{"10.0.0.1:5003", 8 * time.Second, true}, // 10 s after the first line
	}
	for i, s := range steps {
		now = now.Add(s.after)
		if got := r.refused("peer", s.addr, "test", ""); got != s.logged {
			t.Fatalf("step %d (%s): logged %v, want %v", i, s.addr, got, s.logged)
		}
	}
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Fatalf("%d lines, want 3:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), `"refused_since_last_line":2`) || r.total.Load() != 5 {
		t.Fatalf("total %d, log:\n%s\nwant 5 refusals and a line counting the 2 not logged", r.total.Load(), out.String())
	}
}
