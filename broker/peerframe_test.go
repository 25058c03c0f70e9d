package broker

import (
	"errors"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/raftlog"
)

// TestForeignPeerFramesDropped sends a running node frames from another
// cluster, another version, garbage and a forged sender; the node drops them
// all and keeps serving, still leader in the same term.
func TestForeignPeerFramesDropped(t *testing.T) {
	cfg, c, term, d := leaderWithPeerSocket(t)
	// A heartbeat from a leader of a much higher term: if any of these
	// frames reached the core, this node would become its follower.
	vote := raftlog.Message{Type: raftlog.MsgHeartbeat, From: 2, To: 1, Term: term + 100}
	good := encodeFrame(cfg.Cluster.ID(), 2, vote)
	otherVersion := append([]byte(nil), good...)
	otherVersion[2] = frameVersion + 1
	forged := encodeFrame(cfg.Cluster.ID(), 3, vote) // envelope says 3, message says 2
	frames := [][]byte{
		encodeFrame("another-cluster", 2, vote),
		otherVersion,
		forged,
		[]byte("garbage"),
		{},
		good[:len(good)-3],
	}
	for _, f := range frames {
		if _, err := d.SendBytes(f, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Round-trip a client request after the frames: the peer socket's queue
	// is handled by then in practice, and the state must be unchanged.
	for i := 0; i < 5; i++ {
		c.do(`{"type":"topic","method":"GET"}`)
	}
	st := c.status()
	if st.Role != "Leader" || st.Term != term {
		t.Fatalf("after foreign frames: role %s term %d, want Leader in term %d", st.Role, st.Term, term)
	}
}

// TestDecodeFrameRejects checks the envelope rules one by one.
func TestDecodeFrameRejects(t *testing.T) {
	m := raftlog.Message{Type: raftlog.MsgHeartbeat, From: 2, To: 1, Term: 3}
	good := encodeFrame("c1", 2, m)
	if got, err := decodeFrame("c1", good); err != nil || got.Term != 3 || got.From != 2 {
		t.Fatalf("good frame: %+v %v", got, err)
	}
	local := encodeFrame("c1", 2, raftlog.Message{Type: raftlog.MsgHup, From: 2, To: 1})
	tests := map[string][]byte{
		"other cluster": encodeFrame("c2", 2, m),
		"forged sender": encodeFrame("c1", 5, m),
		"local type":    local,
		"short":         good[:2],
		"truncated":     good[:len(good)-1],
		"bad magic":     append([]byte{'X'}, good[1:]...),
	}
	for name, f := range tests {
		if _, err := decodeFrame("c1", f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestNonMemberFramesDropped: a well-formed frame of this cluster from a node
// id that is not in the cluster file is dropped like a foreign one.
func TestNonMemberFramesDropped(t *testing.T) {
	cfg, c, term, d := leaderWithPeerSocket(t)
	hb := raftlog.Message{Type: raftlog.MsgHeartbeat, From: 2, To: 1, Term: term + 100}
	if _, err := d.SendBytes(encodeFrame(cfg.Cluster.ID(), 2, hb), 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		c.do(`{"type":"topic","method":"GET"}`)
	}
	if st := c.status(); st.Role != "Leader" || st.Term != term {
		t.Fatalf("after a heartbeat from non-member 2: role %s term %d, want Leader in term %d", st.Role, st.Term, term)
	}
}

// leaderWithPeerSocket starts a one-node broker, waits until it leads, and
// returns its config, a client, its term and a DEALER connected to its peer
// port, for sending it hand-made frames.
func leaderWithPeerSocket(t *testing.T) (config.Node, *rawClient, uint64, *zmq.Socket) {
	t.Helper()
	cfg := testCluster(t, 1)[0]
	startBroker(t, cfg)
	c := dialRaw(t, cfg.Self().ClientAddr())
	testwait.For(t, 2*time.Second, "leader", func() bool { return c.status().Role == "Leader" })
	d, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.SetLinger(0)
	if err := d.Connect("tcp://" + cfg.Self().PeerAddr()); err != nil {
		t.Fatal(err)
	}
	return cfg, c, c.status().Term, d
}

// TestBadFrameWrapsItsCause: a frame whose Raft body does not decode is
// ErrBadFrame and, through %w, the codec's own sentinel, so a caller can
// tell a forged envelope from a corrupt message.
func TestBadFrameWrapsItsCause(t *testing.T) {
	_, err := decodeRaftBody(1, []byte{0xff, 0xff, 0xff})
	if !errors.Is(err, ErrBadFrame) || !errors.Is(err, raftlog.ErrCorruptMessage) {
		t.Fatalf("err %v: want both ErrBadFrame and raftlog.ErrCorruptMessage", err)
	}
}
