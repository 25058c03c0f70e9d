package broker

import (
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/raftlog"
)

// peerInbox is the receiving half of a peer transport, the part with rules
// in it: it decodes a frame, refuses what a peer may not send (decision 10:
// strangers, removed nodes, messages breaking raftlog.ValidateSender, a
// bare MsgSnap) and queues the rest for its consumer. zmqTransport feeds it
// the frames its ROUTER receives; the tests' in-memory network
// (memnet_test.go) feeds it directly, so both go through the same checks.
// dispatch (and noticeRemoved) run on one goroutine at a time; setKnown and
// the channel getters may run on any.
type peerInbox struct {
	clusterID string
	self      uint64
	// known is who may send to this node: the peers it has addresses for
	// and itself (SetPeers replaces it; dispatch reads it).
	known atomic.Pointer[knownPeers]
	// notify queues a frame for a peer: the transport's SendFrame, used
	// for frameRemoved notices.
	notify func(to uint64, frame []byte) bool
	// removedCh carries frameRemoved notices' senders to the node loop;
	// noticed rate-limits the notices this node sends (dispatch only).
	removedCh chan uint64
	noticed   map[uint64]time.Time

	recvCh  chan raftlog.Message
	chunkCh chan snapChunk
	ackCh   chan snapAck
	// dropped counts messages dropped because a queue was full or a peer
	// unreachable (the transport's sending half counts here too).
	dropped atomic.Uint64
}

func newPeerInbox(clusterID string, self uint64) *peerInbox {
	return &peerInbox{
		clusterID: clusterID,
		self:      self,
		removedCh: make(chan uint64, 1),
		noticed:   map[uint64]time.Time{},
		recvCh:    make(chan raftlog.Message, peerRecvQueueMsgs),
		chunkCh:   make(chan snapChunk, snapRecvQueue),
		ackCh:     make(chan snapAck, snapRecvQueue),
	}
}

func (t *peerInbox) Recv() <-chan raftlog.Message { return t.recvCh }
func (t *peerInbox) Chunks() <-chan snapChunk     { return t.chunkCh }
func (t *peerInbox) Acks() <-chan snapAck         { return t.ackCh }

// knownPeers is who may send to this node, and who was removed.
type knownPeers struct {
	ids     []uint64 // self included, sorted
	addr    map[uint64]string
	removed map[uint64]string
}

func (t *peerInbox) setKnown(peers, removed map[uint64]string) {
	k := &knownPeers{ids: []uint64{t.self}, addr: maps.Clone(peers), removed: maps.Clone(removed)}
	for id := range peers {
		k.ids = append(k.ids, id)
	}
	slices.Sort(k.ids)
	t.known.Store(k)
}

func (t *peerInbox) Removed() <-chan uint64 { return t.removedCh }

// noticeInterval is how often a removed node that keeps sending is told.
const noticeInterval = time.Second

// noticeRemoved tells a removed node that sent a frame that it was
// removed, at most once a noticeInterval. Called by the receiver.
func (t *peerInbox) noticeRemoved(id uint64) {
	if now := time.Now(); now.Sub(t.noticed[id]) >= noticeInterval {
		t.noticed[id] = now
		t.notify(id, appendEnvelope(nil, t.clusterID, t.self, frameRemoved))
	}
}

// dispatch decodes a peer frame and queues it for its consumer; a full
// queue drops it (Raft and snapshot transfers retry). An error means the
// frame was refused (ErrBadFrame): the caller counts and logs it.
func (t *peerInbox) dispatch(b []byte) error {
	kind, from, body, err := decodeEnvelope(t.clusterID, b)
	if err != nil {
		return err
	}
	known := t.known.Load()
	if _, ok := known.removed[from]; ok {
		t.noticeRemoved(from)
		return fmt.Errorf("%w: sender %d was removed from the cluster; told it so", ErrBadFrame, from)
	}
	if _, ok := known.addr[from]; !ok {
		// Not a member this node knows (never one, or removed): it must
		// never move this node's term or leader.
		return fmt.Errorf("%w: sender %d is not a peer of node %d", ErrBadFrame, from, t.self)
	}
	check := func(m raftlog.Message) error {
		if err := raftlog.ValidateSender(m, t.self, known.ids); err != nil {
			return fmt.Errorf("%w: %w", ErrBadFrame, err)
		}
		return nil
	}
	var to uint64
	var queued bool
	switch kind {
	case frameRemoved:
		if len(body) != 0 {
			return fmt.Errorf("%w: removal notice with a body", ErrBadFrame)
		}
		select {
		case t.removedCh <- from:
		default:
		}
		return nil
	case frameRaft:
		m, err := decodeRaftBody(from, body)
		if err != nil {
			return err
		}
		if err := check(m); err != nil {
			return err
		}
		if m.Type == raftlog.MsgSnap {
			// A MsgSnap travels inside its snapshot's chunks: stepped alone,
			// it would make the core ask for a snapshot file that never came.
			return fmt.Errorf("%w: MsgSnap outside a snapshot chunk", ErrBadFrame)
		}
		to = m.To
		if to == t.self {
			select {
			case t.recvCh <- m:
				queued = true
			default:
			}
		}
	case frameSnapChunk:
		c, err := decodeSnapChunk(from, body)
		if err != nil {
			return err
		}
		if err := check(c.msg); err != nil {
			return err
		}
		to = c.to
		if to == t.self {
			select {
			case t.chunkCh <- c:
				queued = true
			default:
			}
		}
	case frameSnapAck:
		a, err := decodeSnapAck(from, body)
		if err != nil {
			return err
		}
		to = a.to
		if to == t.self {
			select {
			case t.ackCh <- a:
				queued = true
			default:
			}
		}
	}
	if to != t.self {
		return fmt.Errorf("%w: addressed to node %d", ErrBadFrame, to)
	}
	if !queued {
		t.dropped.Add(1)
	}
	return nil
}
