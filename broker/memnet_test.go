package broker

import (
	"maps"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/raftlog"
)

// memNetwork is the in-memory twin of the peer network: it connects the
// peer transports of brokers in one process by channels instead of ZeroMQ
// sockets (hashicorp/raft's inmem_transport.go, with the faults of its
// fuzzy tests). Frames are encoded and decoded as on the wire, and each
// node's receiving half is the real peerInbox, so the checks of decision
// 10 apply. Faults:
//
//   - partition: a cut link (one direction) drops every frame on it;
//   - drop: every frame is dropped with probability dropPct percent;
//   - delay: every frame waits a delay drawn from [minDelay, maxDelay]
//     before it is delivered; frames to one node are delivered in the order
//     they were sent (no reordering).
//
// Drops and delays come from one *rand.Rand seeded by the test, drawn in
// the order frames are sent: the faults are a function of the seed and of
// that order. The brokers' goroutines and clocks are real, so a run is not
// replayable step by step; tests name the seed so a failure can be rerun
// with the same fault stream. Deterministic step-by-step runs are raftlog's
// (rafttest, testdata/*.txt).
type memNetwork struct {
	clusterID string

	mu       sync.Mutex
	rng      *rand.Rand // under mu
	nodes    map[uint64]*memTransport
	cut      map[[2]uint64]bool // {from, to} links that drop everything
	dropPct  int
	minDelay time.Duration
	maxDelay time.Duration

	delivered, dropped, refused atomic.Uint64
}

func newMemNetwork(clusterID string, seed int64) *memNetwork {
	return &memNetwork{clusterID: clusterID, rng: rand.New(rand.NewSource(seed)),
		nodes: map[uint64]*memTransport{}, cut: map[[2]uint64]bool{}}
}

// memInboxFrames bounds the frames queued for one node, like the ZeroMQ
// transport's queues: past it, frames are dropped.
const memInboxFrames = 4096

// transportFor returns a Broker.peerTransport that attaches node self to
// the network. A node that restarts attaches again and replaces its old
// transport.
func (nw *memNetwork) transportFor(self uint64) func(peers map[uint64]string) (transport, error) {
	return func(peers map[uint64]string) (transport, error) {
		t := &memTransport{peerInbox: newPeerInbox(nw.clusterID, self), nw: nw,
			inCh: make(chan memFrame, memInboxFrames), done: make(chan struct{})}
		t.notify = t.SendFrame
		t.SetPeers(peers, nil)
		nw.mu.Lock()
		nw.nodes[self] = t
		nw.mu.Unlock()
		t.wg.Add(1)
		go t.deliver()
		return t, nil
	}
}

// setFaults sets the drop rate and delay range of every link.
func (nw *memNetwork) setFaults(dropPct int, minDelay, maxDelay time.Duration) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.dropPct, nw.minDelay, nw.maxDelay = dropPct, minDelay, maxDelay
}

// isolate cuts every link to and from id.
func (nw *memNetwork) isolate(id uint64, all []uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for _, o := range all {
		if o != id {
			nw.cut[[2]uint64{id, o}] = true
			nw.cut[[2]uint64{o, id}] = true
		}
	}
}

// mute cuts every link from id: it hears the others, they do not hear it.
func (nw *memNetwork) mute(id uint64, all []uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for _, o := range all {
		if o != id {
			nw.cut[[2]uint64{id, o}] = true
		}
	}
}

// heal restores every link.
func (nw *memNetwork) heal() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.cut)
}

// route queues frame from node from for node to, unless a fault drops it.
// It reports false when to's queue is full, as SendFrame does.
func (nw *memNetwork) route(from, to uint64, frame []byte) bool {
	nw.mu.Lock()
	dst := nw.nodes[to]
	drop := dst == nil || nw.cut[[2]uint64{from, to}] || (nw.dropPct > 0 && nw.rng.Intn(100) < nw.dropPct)
	delay := nw.minDelay
	if !drop && nw.maxDelay > nw.minDelay {
		delay += time.Duration(nw.rng.Int63n(int64(nw.maxDelay - nw.minDelay + 1)))
	}
	nw.mu.Unlock()
	if drop {
		nw.dropped.Add(1)
		return true
	}
	select {
	case dst.inCh <- memFrame{frame: frame, due: time.Now().Add(delay)}:
		return true
	default:
		nw.dropped.Add(1)
		return false
	}
}

// memFrame is a frame on its way, deliverable from due on.
type memFrame struct {
	frame []byte
	due   time.Time
}

// memTransport is one node's end of a memNetwork.
type memTransport struct {
	*peerInbox
	nw *memNetwork

	mu    sync.Mutex
	peers map[uint64]bool // who this node sends to (SetPeers)

	inCh      chan memFrame
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ transport = (*memTransport)(nil)

func (t *memTransport) Send(msgs []raftlog.Message) {
	for _, m := range msgs {
		t.SendFrame(m.To, encodeFrame(t.clusterID, t.self, m))
	}
}

// SendFrame routes frame to peer to; a node not among its peers gets
// nothing, as the ZeroMQ transport has no socket to it.
func (t *memTransport) SendFrame(to uint64, frame []byte) bool {
	t.mu.Lock()
	ok := t.peers[to]
	t.mu.Unlock()
	if !ok {
		t.nw.dropped.Add(1)
		return true
	}
	return t.nw.route(t.self, to, frame)
}

func (t *memTransport) SetPeers(peers, removed map[uint64]string) {
	peers = maps.Clone(peers)
	delete(peers, t.self)
	t.setKnown(peers, removed)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.peers = map[uint64]bool{}
	for id := range peers {
		t.peers[id] = true
	}
	for id := range removed {
		t.peers[id] = id != t.self // only for the removal notice
	}
}

func (t *memTransport) Removed() <-chan uint64 { return t.removedCh }

func (t *memTransport) Close() error {
	t.closeOnce.Do(func() {
		t.nw.mu.Lock()
		if t.nw.nodes[t.self] == t {
			delete(t.nw.nodes, t.self)
		}
		t.nw.mu.Unlock()
		close(t.done)
	})
	t.wg.Wait()
	return nil
}

// deliver hands the node's frames to its inbox, each once it is due, in
// the order they were sent. It is the one goroutine that calls dispatch.
func (t *memTransport) deliver() {
	defer t.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var f memFrame
		select {
		case <-t.done:
			return
		case f = <-t.inCh:
		}
		if wait := time.Until(f.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-t.done:
				return
			case <-timer.C:
			}
		}
		if err := t.dispatch(f.frame); err != nil {
			t.nw.refused.Add(1)
			continue
		}
		t.nw.delivered.Add(1)
	}
}
