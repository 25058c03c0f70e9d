package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/proccluster"
	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/storage"
)

// The tests in this file replay the attacks of issue 12 against real broker
// processes, as an independent program on the same network would: forged
// peer frames (the cluster id is a hash of the public cluster file), a huge
// frame announced on the internal port, and many half-sent frames on the
// client port. Each checks that the cluster keeps its leader and term and
// loses no acknowledged message.

// peerFrame wraps m in the peer frame envelope (broker/frame.go), version 2.
func peerFrame(clusterID string, m raftlog.Message) []byte {
	b := []byte{'R', 'Q', 2}
	b = binary.AppendUvarint(b, uint64(len(clusterID)))
	b = append(b, clusterID...)
	b = binary.AppendUvarint(b, m.From)
	b = append(b, 1) // a Raft message
	return append(b, raftlog.MarshalMessage(m)...)
}

// sendPeerFrames sends frames to a node's internal port from a DEALER, as
// a peer would, and waits until they left.
func sendPeerFrames(t *testing.T, addr string, frames ...[]byte) {
	t.Helper()
	d, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetLinger(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Connect("tcp://" + addr); err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if _, err := d.SendBytes(f, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil { // lingers until sent
		t.Fatal(err)
	}
}

// rawAnnounce connects to addr, does a ZMTP 3.0 NULL handshake as a DEALER
// and announces one frame of size bytes, sending none of its body yet.
func rawAnnounce(addr string, size uint64) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	greeting := make([]byte, 64)
	greeting[0], greeting[9], greeting[10] = 0xFF, 0x7F, 3
	copy(greeting[12:], "NULL")
	ready := []byte("\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER")
	b := append(greeting, 0x04, byte(len(ready)))
	b = append(b, ready...)
	b = append(b, 0x02) // a long message frame, the last one
	b = binary.BigEndian.AppendUint64(b, size)
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(b); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// writeStall is how long a write may wait for the broker to read.
const writeStall = 2 * time.Second

// writeUpTo writes n bytes of body to conn in pieces and returns how many
// went out before an error (the broker cutting the connection).
func writeUpTo(conn net.Conn, n int) (int, error) {
	piece := make([]byte, 256<<10)
	sent := 0
	for sent < n {
		_ = conn.SetWriteDeadline(time.Now().Add(writeStall))
		k, err := conn.Write(piece[:min(len(piece), n-sent)])
		sent += k
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// steadyCluster is a 3-node cluster with a leader, a topic and acknowledged
// messages.
type steadyCluster struct {
	c      *proccluster.Cluster
	cl     *client.Client
	leader int
	term   uint64
	acked  []string
}

// steadyArgs slow elections down (timeout 1-2 s, heartbeats every 60 ms)
// so that a loaded CI machine does not change the leader on its own while a
// test checks that an attack did not.
var steadyArgs = []string{"--tick-interval", "20ms", "--election-ticks", "50", "--heartbeat-ticks", "3"}

func newSteadyCluster(t *testing.T, extra ...string) *steadyCluster {
	t.Helper()
	args := append(append(append([]string(nil), fastArgs...), steadyArgs...), extra...)
	c := startCluster(t, bin, proccluster.Options{Nodes: 3, Args: args})
	// Slow elections on a loaded machine: allow several rounds.
	if _, _, err := c.WaitLeader(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	cl, err := c.Client(client.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	s := &steadyCluster{c: c, cl: cl}
	if created, err := cl.CreateTopic(context.Background(), "q"); err != nil || !created {
		t.Fatalf("create topic: %v %v", created, err)
	}
	s.put(t, 30)
	if s.leader, s.term, err = c.WaitLeader(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *steadyCluster) put(t *testing.T, n int) {
	t.Helper()
	for range n {
		m := fmt.Sprintf("m%d", len(s.acked))
		if ok, err := s.cl.Put(context.Background(), "q", m); err != nil || !ok {
			t.Fatalf("put %s: %v %v", m, ok, err)
		}
		s.acked = append(s.acked, m)
	}
}

// checkIntact: every node runs and answers with the same leader and term as
// before the attack, the cluster still commits, and every acknowledged
// message comes out once, in order.
func (s *steadyCluster) checkIntact(t *testing.T) {
	t.Helper()
	// Enough traffic to span several election timeouts: a node the attack
	// broke would crash or campaign meanwhile.
	s.put(t, 60)
	for i := range s.c.Addrs {
		st, err := s.c.Status(i, 2*time.Second)
		if err != nil {
			t.Fatalf("node %d does not answer after the attack: %v", i, err)
		}
		if st.Term != s.term || st.LeaderID == nil || *st.LeaderID != s.leader {
			t.Fatalf("node %d after the attack: term %d, leader %v; before: term %d, leader %d", i, st.Term, st.LeaderID, s.term, s.leader)
		}
	}
	var got []string
	for {
		m, ok, err := s.cl.Pop(context.Background(), "q")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, m)
	}
	if strings.Join(got, ",") != strings.Join(s.acked, ",") {
		t.Fatalf("popped %d messages, acknowledged %d:\ngot  %v\nwant %v", len(got), len(s.acked), got, s.acked)
	}
}

func (s *steadyCluster) clusterID() string { return config.Cluster{Addresses: s.c.Addrs}.ID() }

// waitRefused waits until node i reports at least n refused peer frames.
func (s *steadyCluster) waitRefused(t *testing.T, i int, n uint64) {
	t.Helper()
	testwait.For(t, 10*time.Second, fmt.Sprintf("node %d to refuse %d peer frames", i, n), func() bool {
		st, err := s.c.Status(i, time.Second)
		return err == nil && st.PeerFramesRefused >= n
	})
}

// TestForgedTermOverflowHeartbeat (issue 12, finding 1): a heartbeat of
// term 2^64-1 naming the leader as sender, sent to every follower. Before
// peer frames were validated every node panicked (term+1 wrapped to 0 in
// campaign) and panicked again on every restart.
func TestForgedTermOverflowHeartbeat(t *testing.T) {
	s := newSteadyCluster(t)
	from := uint64(s.leader) + 1
	for i := range s.c.Addrs {
		if i == s.leader {
			continue
		}
		m := raftlog.Message{Type: raftlog.MsgHeartbeat, From: from, To: uint64(i) + 1, Term: math.MaxUint64}
		sendPeerFrames(t, s.c.Addrs[i].PeerAddr(), peerFrame(s.clusterID(), m))
		s.waitRefused(t, i, 1)
	}
	s.checkIntact(t)
}

// TestForgedAppendBelowCommit (issue 12, finding 2): an AppendEntries at
// the current term from the real leader's id whose one entry claims index
// 1, below the commit index. Before, the follower died with "entry 1
// conflicts with committed entry".
func TestForgedAppendBelowCommit(t *testing.T) {
	s := newSteadyCluster(t)
	target := (s.leader + 1) % 3
	st, err := s.c.Status(target, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := raftlog.Message{Type: raftlog.MsgApp, From: uint64(s.leader) + 1, To: uint64(target) + 1, Term: s.term,
		Index: st.Commit, LogTerm: s.term, Commit: st.Commit,
		Entries: []raftlog.Entry{{Index: 1, Term: 0, Type: raftlog.EntryNormal, Data: []byte("forged")}}}
	sendPeerFrames(t, s.c.Addrs[target].PeerAddr(), peerFrame(s.clusterID(), m))
	s.waitRefused(t, target, 1)
	s.checkIntact(t)
}

// TestHugeFrameOnPeerPort (issue 12, finding 3): one connection announces a
// 3 GiB frame on the internal port and sends 64 MiB of it. Before, the
// broker took it all (RSS grew with every byte sent); now the frame is
// over ZMQ_MAXMSGSIZE and the connection is cut at once.
func TestHugeFrameOnPeerPort(t *testing.T) {
	s := newSteadyCluster(t)
	target := (s.leader + 1) % 3
	before, err := s.c.RSS(target)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := rawAnnounce(s.c.Addrs[target].PeerAddr(), 3<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const body = 64 << 20
	sent, werr := writeUpTo(conn, body)
	after, err := s.c.RSS(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d of %d bytes (%v); RSS %d → %d MiB", sent, body, werr, before>>20, after>>20)
	if werr == nil {
		t.Fatalf("the broker took all %d bytes of a frame announced at 3 GiB", body)
	}
	if growth := after - before; growth > 32<<20 {
		t.Fatalf("RSS grew by %d MiB", growth>>20)
	}
	s.checkIntact(t)
}

// TestManyHalfSentClientFrames (issue 12, finding 4): 40 connections each
// announce a 12 MiB request and send 4 MiB of it. Before, the broker held
// all of them (98 such connections held 1.1 GiB); now connections beyond
// --max-client-connections are cut, so at most 8 × 4 MiB stay buffered.
func TestManyHalfSentClientFrames(t *testing.T) {
	const limit, conns, body = 8, 40, 4 << 20
	s := newSteadyCluster(t, "--max-client-connections", fmt.Sprint(limit))
	before, err := s.c.RSS(s.leader)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	cut, stalled := 0, 0
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := rawAnnounce(s.c.Addrs[s.leader].ClientAddr(), 12<<20)
			if err != nil {
				mu.Lock()
				cut++
				mu.Unlock()
				return
			}
			_, werr := writeUpTo(conn, body)
			mu.Lock()
			defer mu.Unlock()
			open = append(open, conn)
			if werr != nil {
				cut++
				if ne, ok := werr.(net.Error); ok && ne.Timeout() {
					stalled++
				}
			}
		}()
	}
	wg.Wait()
	after, err := s.c.RSS(s.leader)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range open {
		c.Close()
	}
	st, err := s.c.Status(s.leader, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d connections, %d cut by the time their 4 MiB went out (%d of them stalled; %d by the broker's count); RSS %d → %d MiB",
		conns, cut, stalled, st.ClientConnsRefused, before>>20, after>>20)
	if growth := after - before; growth > 96<<20 {
		t.Fatalf("RSS grew by %d MiB with %d half-sent 12 MiB requests (limit %d connections)", growth>>20, conns, limit)
	}
	if cut == 0 || st.ClientConnsRefused == 0 {
		t.Fatalf("no connection was cut (%d, broker: %d): %d connections against a limit of %d", cut, st.ClientConnsRefused, conns, limit)
	}
	s.checkIntact(t)
}

// TestRaftDBTermOverflowRefused: a data directory whose raft.db holds term
// 2^64-1 (what finding 1 persisted on every node) is refused at start with
// a message that names the file and the fix, instead of a panic; the other
// two nodes keep their leader.
func TestRaftDBTermOverflowRefused(t *testing.T) {
	s := newSteadyCluster(t)
	victim := (s.leader + 1) % 3
	if _, err := s.c.Stop(victim, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.c.DataDir(victim), "raft.db")
	r, err := storage.OpenRaftDB(path, s.clusterID())
	if err != nil {
		t.Fatal(err)
	}
	hs, _, err := r.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	hs.Term = math.MaxUint64
	if err := r.Save(hs, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Start(victim); err != nil {
		t.Fatal(err)
	}
	exitErr, err := s.c.WaitExit(victim, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if exitErr == nil {
		t.Fatal("the node exited 0; want a refusal")
	}
	logb, err := os.ReadFile(s.c.LogPath(victim))
	if err != nil {
		t.Fatal(err)
	}
	log := string(logb)
	if strings.Contains(log, "panic") || !strings.Contains(log, path) ||
		!strings.Contains(log, "18446744073709551615") || !strings.Contains(log, "--recover") {
		t.Fatalf("want a refusal naming %s, the term and the fix, no panic; log:\n%s", path, tail(logb, 3000))
	}
	// The two others go on (checkIntact is for three nodes).
	s.put(t, 10)
	if l, term, err := s.c.WaitLeader(30 * time.Second); err != nil || l != s.leader || term != s.term {
		t.Fatalf("leader %d term %d (%v), want %d term %d", l, term, err, s.leader, s.term)
	}
}
