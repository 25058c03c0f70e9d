package broker

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/snapshot"
)

// lossyLink carries snapshot frames between a leader (id 1) and a follower
// (id 2) in memory, dropping a seeded fraction of them, and measures the
// bytes the leader has in flight beyond the follower's last ack.
type lossyLink struct {
	t         *testing.T
	mu        sync.Mutex
	rng       *rand.Rand
	dropPct   int
	chunkCh   chan snapChunk // to the follower
	ackCh     chan snapAck   // to the leader
	acked     int64
	maxFlight int64
	dropped   int
}

func (l *lossyLink) drop() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rng.Intn(100) < l.dropPct {
		l.dropped++
		return true
	}
	return false
}

// end is one side's transport.
type end struct {
	l    *lossyLink
	self uint64
}

func (e end) Send([]raftlog.Message)          {}
func (e end) Recv() <-chan raftlog.Message    { return nil }
func (e end) Close() error                    { return nil }
func (e end) Chunks() <-chan snapChunk        { return e.l.chunkCh }
func (e end) Acks() <-chan snapAck            { return e.l.ackCh }
func (e end) SetPeers(_, _ map[uint64]string) {}
func (e end) Removed() <-chan uint64          { return nil }
func (e end) SendFrame(to uint64, b []byte) bool {
	kind, from, body, err := decodeEnvelope("c", b)
	if err != nil || from != e.self {
		e.l.t.Errorf("bad frame from %d: %v", e.self, err)
		return false
	}
	if e.l.drop() {
		return true
	}
	switch kind {
	case frameSnapChunk:
		c, err := decodeSnapChunk(from, body)
		if err != nil {
			e.l.t.Errorf("chunk: %v", err)
			return false
		}
		e.l.mu.Lock()
		e.l.maxFlight = max(e.l.maxFlight, c.offset+int64(len(c.data))-e.l.acked)
		e.l.mu.Unlock()
		e.l.chunkCh <- c
	case frameSnapAck:
		a, err := decodeSnapAck(from, body)
		if err != nil {
			e.l.t.Errorf("ack: %v", err)
			return false
		}
		e.l.mu.Lock()
		e.l.acked = max(e.l.acked, a.offset)
		e.l.mu.Unlock()
		select {
		case e.l.ackCh <- a:
		default:
		}
	}
	return true
}

var _ transport = end{}

// TestSnapshotTransferLossy streams a snapshot over a link that drops
// frames: the transfer completes by resending from the acked offset, the
// follower gets the exact body, and the leader never has more than the
// window in flight.
func TestSnapshotTransferLossy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		seed    int64
		dropPct int
	}{{"no loss", 1, 0}, {"10% loss", 2, 10}, {"30% loss", 3, 30}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			leaderStore, err := snapshot.Open(filepath.Join(dir, "leader"), "c", 2)
			if err != nil {
				t.Fatal(err)
			}
			followerStore, err := snapshot.Open(filepath.Join(dir, "follower"), "c", 2)
			if err != nil {
				t.Fatal(err)
			}
			body := make([]byte, 300<<10)
			rand.New(rand.NewSource(tc.seed)).Read(body)
			meta, err := leaderStore.Create(snapshot.Meta{Index: 50, Term: 3, Voters: []uint64{1, 2, 3}}, func(w io.Writer) (int64, error) {
				n, err := w.Write(body)
				return int64(n), err
			})
			if err != nil {
				t.Fatal(err)
			}
			link := &lossyLink{t: t, rng: rand.New(rand.NewSource(tc.seed)), dropPct: tc.dropPct,
				chunkCh: make(chan snapChunk, 64), ackCh: make(chan snapAck, 64)}
			installCh := make(chan pendingInstall, 1)
			stop := make(chan struct{})
			defer close(stop)
			rcv := &snapReceiver{store: followerStore, trans: end{link, 2}, clusterID: "c", self: 2, dataDir: dir, log: zerolog.Nop(), installCh: installCh}
			go rcv.run(stop)
			msg := raftlog.Message{Type: raftlog.MsgSnap, From: 1, To: 2, Term: 3, Snapshot: meta.Raft()}
			s := &snapSender{peer: 2, msg: msg, meta: meta, ackCh: make(chan snapAck, 64), stop: make(chan struct{})}
			go func() { // the node loop's routeAck
				for a := range link.ackCh {
					s.ackCh <- a
				}
			}()
			const chunk = 8 << 10
			okCh := make(chan bool, 1)
			go func() {
				okCh <- s.run(leaderStore, end{link, 1}, "c", 1, chunk, snapTiming{resendAfter: 20 * time.Millisecond, giveUpAfter: 10 * time.Second}, zerolog.Nop())
			}()
			var in pendingInstall
			select {
			case in = <-installCh:
			case <-time.After(20 * time.Second):
				t.Fatalf("seed %d: no install after 20s (dropped %d frames)", tc.seed, link.dropped)
			}
			if ok := <-okCh; !ok {
				t.Fatalf("seed %d: the sender reported failure", tc.seed)
			}
			got, err := os.ReadFile(in.path)
			if err != nil || !bytes.Equal(got, body) || !in.meta.Same(meta) || in.msg.Snapshot.Index != 50 {
				t.Fatalf("seed %d: installed %d bytes (%v), meta %+v; want the %d-byte body of %+v", tc.seed, len(got), err, in.meta, len(body), meta)
			}
			link.mu.Lock()
			defer link.mu.Unlock()
			if limit := int64(snapWindowChunks * chunk); link.maxFlight > limit {
				t.Fatalf("seed %d: %d bytes in flight beyond the ack, window is %d", tc.seed, link.maxFlight, limit)
			}
			if tc.dropPct > 0 && link.dropped == 0 {
				t.Fatalf("seed %d: the link dropped nothing; the test proves nothing", tc.seed)
			}
		})
	}
}

func TestSnapFramesRoundTripAndReject(t *testing.T) {
	meta := snapshot.Meta{ClusterID: "c", Index: 9, Term: 2, Voters: []uint64{1, 2}, Size: 100, CRC: 7}
	msg := raftlog.Message{Type: raftlog.MsgSnap, From: 1, To: 2, Term: 2, Snapshot: meta.Raft()}
	chunk := snapChunk{to: 2, msg: msg, meta: meta, offset: 90, data: []byte("0123456789")}
	frame := encodeSnapChunk("c", 1, chunk)
	kind, from, body, err := decodeEnvelope("c", frame)
	if err != nil || kind != frameSnapChunk || from != 1 {
		t.Fatalf("envelope: %v %v %v", kind, from, err)
	}
	got, err := decodeSnapChunk(from, body)
	if err != nil || got.offset != 90 || string(got.data) != "0123456789" || !got.meta.Same(meta) || got.msg.Snapshot.Index != 9 {
		t.Fatalf("chunk round trip: %+v %v", got, err)
	}
	if _, err := decodeFrame("c", frame); err == nil {
		t.Fatalf("decodeFrame accepted a chunk frame as a Raft message")
	}
	ack := snapAck{to: 1, index: 9, term: 2, crc: 7, offset: 40, status: ackProgress}
	_, _, body, _ = decodeEnvelope("c", encodeSnapAck("c", 2, ack))
	if a, err := decodeSnapAck(2, body); err != nil || a.offset != 40 || !a.matches(meta) || a.from != 2 {
		t.Fatalf("ack round trip: %+v %v", a, err)
	}
	pastEnd := chunk
	pastEnd.offset = 95
	wrongMsg := chunk
	wrongMsg.msg.Type = raftlog.MsgApp
	otherFile := chunk
	otherFile.msg.Snapshot.Index = 8
	tests := map[string][]byte{
		"past the declared size":  encodeSnapChunk("c", 1, pastEnd),
		"not a MsgSnap":           encodeSnapChunk("c", 1, wrongMsg),
		"message and file differ": encodeSnapChunk("c", 1, otherFile),
		"forged sender":           encodeSnapChunk("c", 3, chunk),
		"truncated":               frame[:len(frame)-len(chunk.data)-3],
	}
	for name, f := range tests {
		_, from, body, err := decodeEnvelope("c", f)
		if err == nil {
			_, err = decodeSnapChunk(from, body)
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, _, _, err := decodeEnvelope("other", frame); err == nil {
		t.Errorf("a chunk from another cluster was accepted")
	}
}
