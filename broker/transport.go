package broker

import (
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/raftlog"
)

// transport moves Raft messages between nodes. Send never blocks: a message
// that cannot be queued is dropped, and Raft's retries recover it.
type transport interface {
	Send(msgs []raftlog.Message)
	Recv() <-chan raftlog.Message
	// SendFrame queues an encoded snapshot frame (chunk or ack) for peer
	// to; it reports false when the queue is full (the frame is dropped).
	SendFrame(to uint64, frame []byte) bool
	// Chunks delivers snapshot chunks addressed to this node; Acks delivers
	// the acks of chunks this node sent.
	Chunks() <-chan snapChunk
	Acks() <-chan snapAck
	// SetPeers replaces the peers (raft id → "ip:internal_port") as the
	// membership changes; removed are the removed nodes this one knows an
	// address for: their frames are refused and answered with a
	// frameRemoved notice.
	SetPeers(peers, removed map[uint64]string)
	// Removed delivers the id of a member that says this node was removed.
	Removed() <-chan uint64
	Close() error
}

var _ transport = (*zmqTransport)(nil)

// Limits of the peer transport.
const (
	peerSendQueueMsgs = 4096 // messages queued for the sender goroutine
	peerRecvQueueMsgs = 4096 // messages queued for the node loop
	snapSendQueue     = 64   // snapshot frames queued for the sender goroutine
	snapRecvQueue     = 64   // snapshot chunks (or acks) queued for their consumer
	peerHWMMsgs       = 1000 // ZeroMQ high-water mark per peer socket
	dropLogInterval   = 10 * time.Second
)

// zmqTransport is a thin ZeroMQ adapter: a ROUTER bound on the node's
// internal port receives, one DEALER per peer sends. Each socket belongs to
// exactly one goroutine; the node loop reaches them through channels.
type zmqTransport struct {
	// peerInbox decodes, checks and queues what the ROUTER receives; its
	// dispatch runs on the receive goroutine only.
	*peerInbox
	// zctx and curve make the DEALERs of peers added later.
	zctx    *zmq.Context
	curve   *peerCurve
	peerCh  chan map[uint64]string
	log     zerolog.Logger
	limiter *connLimiter

	sendCh  chan []raftlog.Message
	frameCh chan rawFrame
	done    chan struct{}
	wg      sync.WaitGroup

	closeOnce sync.Once
	// refused counts received frames dropped as invalid (foreign, malformed,
	// breaking a rule of raftlog.ValidateMessage, from a stranger).
	refused *atomic.Uint64
}

// peerLimits bound what the peer port may make this node buffer.
type peerLimits struct {
	// maxFrameBytes is ZMQ_MAXMSGSIZE: a peer announcing a larger frame is
	// disconnected before anything is allocated for it.
	maxFrameBytes int64
	// maxConns bounds the connections the peer ROUTER holds at once.
	maxConns int
	// refused and connsRefused count dropped frames and cut connections;
	// nil for counters nobody reads.
	refused, connsRefused *atomic.Uint64
}

// maxPeerFrameBytes is the largest frame a correct peer sends, with room to
// spare: a MsgApp holds at most maxBatchBytes of entries (counting
// raftlog.EntryOverheadBytes each) or one entry of at most maxEntryBytes (a
// command: one message, its topic and ids); a snapshot chunk holds
// chunkBytes. The slack covers envelopes, message headers and the snapshot
// header.
func maxPeerFrameBytes(maxBatchBytes uint64, maxEntryBytes, chunkBytes int) int64 {
	const slack = 64 << 10
	return int64(max(maxBatchBytes, uint64(maxEntryBytes)+raftlog.EntryOverheadBytes, uint64(chunkBytes))) + slack
}

// maxPeerConns is how many connections the peer port accepts at once: one
// per peer, room for reconnects that overlap a dying connection, and a few
// for tools.
func maxPeerConns(clusterSize int) int { return 4*clusterSize + 8 }

// peerCurve secures the peer port with CURVE (see curve.go).
type peerCurve struct {
	keys     *curveKeys
	refusals *refusalLog
}

// newZMQTransport binds listen (tcp://ip:port) and connects to peers (id →
// "ip:port"). It returns once the ROUTER is bound, so a port conflict is
// reported to the caller. A nil curve is plaintext; otherwise the ROUTER
// is a CURVE server in the peer ZAP domain and each DEALER a CURVE client
// of its peer's key.
func newZMQTransport(zctx *zmq.Context, clusterID string, self uint64, listen string, peers map[uint64]string, lim peerLimits, curve *peerCurve, log zerolog.Logger) (*zmqTransport, error) {
	if lim.refused == nil {
		lim.refused = new(atomic.Uint64)
	}
	t := &zmqTransport{
		peerInbox: newPeerInbox(clusterID, self),
		zctx:      zctx,
		curve:     curve,
		peerCh:    make(chan map[uint64]string, 16),
		refused:   lim.refused,
		log:       log.With().Str("component", "transport").Logger(),
		sendCh:    make(chan []raftlog.Message, peerSendQueueMsgs),
		frameCh:   make(chan rawFrame, snapSendQueue),
		done:      make(chan struct{}),
	}
	t.notify = t.SendFrame
	router, err := zctx.NewSocket(zmq.ROUTER)
	if err != nil {
		return nil, fmt.Errorf("broker: peer socket: %w", err)
	}
	if err := setSocketDefaults(router); err != nil {
		router.Close()
		return nil, err
	}
	// A peer that reconnects (after a restart, a pause or a dropped
	// connection) comes back with the same identity, its node id, while
	// this side may still hold its old connection: without handover libzmq
	// refuses the new one for as long as the old one lingers.
	if err := router.SetRouterHandover(true); err != nil {
		router.Close()
		return nil, fmt.Errorf("broker: peer socket: %w", err)
	}
	if lim.maxFrameBytes > 0 {
		if err := router.SetMaxmsgsize(lim.maxFrameBytes); err != nil {
			router.Close()
			return nil, fmt.Errorf("broker: peer socket: %w", err)
		}
	}
	var refusals *refusalLog
	if curve != nil {
		refusals = curve.refusals
		if err := serveCurve(router, curve.keys.secret, zapDomainPeer); err != nil {
			router.Close()
			return nil, fmt.Errorf("broker: peer socket CURVE: %w", err)
		}
	}
	if lim.maxConns > 0 {
		if t.limiter, err = startConnLimiter(zctx, router, "peer", lim.maxConns, lim.connsRefused, refusals, t.log); err != nil {
			router.Close()
			return nil, err
		}
	}
	if err := router.Bind(listen); err != nil {
		router.Close()
		t.limiter.stop()
		return nil, fmt.Errorf("broker: bind internal port %s: %w (is another broker running, or the port taken?)", listen, err)
	}
	t.setKnown(peers, nil)
	dealers := make(map[uint64]*zmq.Socket, len(peers))
	for id, addr := range peers {
		d, err := t.dial(id, addr)
		if err != nil {
			router.Close()
			t.limiter.stop()
			for _, s := range dealers {
				s.Close()
			}
			return nil, err
		}
		dealers[id] = d
	}
	t.wg.Add(2)
	go t.receive(router)
	go t.send(dealers)
	return t, nil
}

// ZeroMQ I/O threads (ZMQ_AFFINITY bits): the peer sockets use the first,
// the client socket the second, so bytes arriving on the client port never
// queue ahead of Raft traffic.
const (
	peerIOThread   uint64 = 1 << 0
	clientIOThread uint64 = 1 << 1
)

func setSocketDefaults(s *zmq.Socket) error {
	for _, set := range []func() error{
		func() error { return s.SetAffinity(peerIOThread) },
		func() error { return s.SetLinger(0) },
		func() error { return s.SetSndhwm(peerHWMMsgs) },
		func() error { return s.SetRcvhwm(peerHWMMsgs) },
	} {
		if err := set(); err != nil {
			return fmt.Errorf("broker: socket option: %w", err)
		}
	}
	return nil
}

func (t *zmqTransport) Send(msgs []raftlog.Message) {
	if len(msgs) == 0 {
		return
	}
	select {
	case t.sendCh <- msgs:
	case <-t.done:
	default:
		t.dropped.Add(uint64(len(msgs)))
	}
}

// rawFrame is an encoded frame for one peer.
type rawFrame struct {
	to    uint64
	frame []byte
}

func (t *zmqTransport) SendFrame(to uint64, frame []byte) bool {
	select {
	case t.frameCh <- rawFrame{to: to, frame: frame}:
		return true
	default:
		t.dropped.Add(1)
		return false
	}
}

func (t *zmqTransport) Close() error {
	t.closeOnce.Do(func() { close(t.done) })
	t.wg.Wait()
	return nil
}

// send owns the DEALER sockets.
func (t *zmqTransport) send(dealers map[uint64]*zmq.Socket) {
	defer t.wg.Done()
	defer func() {
		for _, d := range dealers {
			d.Close()
		}
	}()
	lastDropLog := map[uint64]time.Time{}
	for {
		select {
		case <-t.done:
			return
		case msgs := <-t.sendCh:
			for _, m := range msgs {
				t.sendOne(dealers, m.To, encodeFrame(t.clusterID, t.self, m), lastDropLog)
			}
		case f := <-t.frameCh:
			t.sendOne(dealers, f.to, f.frame, lastDropLog)
		case peers := <-t.peerCh:
			t.updateDealers(dealers, peers)
		}
	}
}

// SetPeers replaces the peers (id → "ip:internal_port"), as membership
// changes: frames from an id no longer listed are refused at once, and
// the sender connects to new peers and drops the gone ones.
func (t *zmqTransport) SetPeers(peers, removed map[uint64]string) {
	peers = maps.Clone(peers)
	delete(peers, t.self)
	t.setKnown(peers, removed)
	dial := maps.Clone(peers)
	for id, addr := range removed {
		if _, ok := dial[id]; !ok && id != t.self {
			dial[id] = addr // only for the notice
		}
	}
	select {
	case t.peerCh <- dial:
	case <-t.done:
	}
}

// updateDealers connects to new peers (or a peer's new address) and
// closes the sockets of peers no longer listed. Owned by send.
func (t *zmqTransport) updateDealers(dealers map[uint64]*zmq.Socket, peers map[uint64]string) {
	for id, d := range dealers {
		if _, ok := peers[id]; !ok {
			d.Close()
			delete(dealers, id)
		}
	}
	for id, addr := range peers {
		if d, ok := dealers[id]; ok {
			if ep, err := d.GetLastEndpoint(); err == nil && ep == "tcp://"+addr {
				continue
			}
			d.Close()
			delete(dealers, id)
		}
		d, err := t.dial(id, addr)
		if err != nil {
			t.log.Error().Err(err).Int("peer", nodeIndex(id)).Msg("cannot connect to a new peer")
			continue
		}
		dealers[id] = d
		t.log.Info().Int("peer", nodeIndex(id)).Str("address", addr).Msg("peer added")
	}
}

// dial makes the DEALER to peer id at addr ("ip:port").
func (t *zmqTransport) dial(id uint64, addr string) (*zmq.Socket, error) {
	d, err := t.zctx.NewSocket(zmq.DEALER)
	if err == nil {
		err = setSocketDefaults(d)
	}
	if err == nil {
		err = d.SetIdentity(strconv.FormatUint(t.self, 10))
	}
	if err == nil {
		err = d.SetImmediate(true)
	}
	if err == nil && t.curve != nil {
		err = dialCurve(d, t.curve.keys.peers[id], t.curve.keys.public, t.curve.keys.secret)
	}
	if err == nil {
		err = d.Connect("tcp://" + addr)
	}
	if err != nil {
		if d != nil {
			d.Close()
		}
		return nil, fmt.Errorf("broker: connect to peer %d at %s: %w", nodeIndex(id), addr, err)
	}
	return d, nil
}

func (t *zmqTransport) sendOne(dealers map[uint64]*zmq.Socket, to uint64, frame []byte, lastDropLog map[uint64]time.Time) {
	d, ok := dealers[to]
	if !ok {
		t.log.Error().Int("to", nodeIndex(to)).Msg("frame to unknown peer dropped")
		return
	}
	if _, err := d.SendBytes(frame, zmq.DONTWAIT); err != nil {
		// EAGAIN: the peer is not connected (ZMQ_IMMEDIATE) or its queue is
		// full. Raft and snapshot transfers retry; log now and then.
		t.dropped.Add(1)
		if now := time.Now(); now.Sub(lastDropLog[to]) > dropLogInterval {
			lastDropLog[to] = now
			t.log.Debug().Int("peer", nodeIndex(to)).Err(err).Msg("peer unreachable, dropping messages")
		}
	}
}

// receive owns the ROUTER socket.
func (t *zmqTransport) receive(router *zmq.Socket) {
	defer t.wg.Done()
	// The socket closes first: its monitor must never wait on a reader that
	// is gone.
	defer t.limiter.stop()
	defer router.Close()
	// One log line per dropLogInterval for all senders together: a flood
	// of bad frames, from any number of identities, costs a counter.
	var lastBadLog time.Time
	var unlogged uint64
	pollLoop(t.done, router, func() {
		for {
			frames, err := router.RecvMessageBytes(zmq.DONTWAIT)
			if err != nil {
				break
			}
			if len(frames) == 2 {
				err = t.dispatch(frames[1])
			} else {
				err = fmt.Errorf("%w: %d ZeroMQ frames, want 1", ErrBadFrame, len(frames)-1)
			}
			if err != nil {
				t.refused.Add(1)
				unlogged++
				if now := time.Now(); now.Sub(lastBadLog) > dropLogInterval {
					lastBadLog = now
					t.log.Warn().Str("peer_identity", fmt.Sprintf("%q", tail(frames[0], 32))).Err(err).
						Uint64("dropped_since_last_line", unlogged).Uint64("dropped_total", t.refused.Load()).
						Msg("peer frame dropped")
					unlogged = 0
				}
			}
		}
	})
}

// tail returns at most the last n bytes of b (a peer identity for a log
// line: an attacker chooses its length).
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
