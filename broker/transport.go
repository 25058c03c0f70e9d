package broker

import (
	"errors"
	"fmt"
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
	Close() error
}

var _ transport = (*zmqTransport)(nil)

// Limits of the peer transport.
const (
	peerSendQueueMsgs = 4096 // messages queued for the sender goroutine
	peerRecvQueueMsgs = 4096 // messages queued for the node loop
	peerHWMMsgs       = 1000 // ZeroMQ high-water mark per peer socket
	peerPollInterval  = 100 * time.Millisecond
	dropLogInterval   = 10 * time.Second
)

// zmqTransport is a thin ZeroMQ adapter: a ROUTER bound on the node's
// internal port receives, one DEALER per peer sends. Each socket belongs to
// exactly one goroutine; the node loop reaches them through channels.
type zmqTransport struct {
	clusterID string
	self      uint64
	log       zerolog.Logger

	sendCh chan []raftlog.Message
	recvCh chan raftlog.Message
	done   chan struct{}
	wg     sync.WaitGroup

	closeOnce sync.Once
	// dropped counts messages dropped because a queue was full or a peer
	// unreachable.
	dropped atomic.Uint64
}

// newZMQTransport binds listen (tcp://ip:port) and connects to peers (id →
// "ip:port"). It returns once the ROUTER is bound, so a port conflict is
// reported to the caller.
func newZMQTransport(zctx *zmq.Context, clusterID string, self uint64, listen string, peers map[uint64]string, log zerolog.Logger) (*zmqTransport, error) {
	t := &zmqTransport{
		clusterID: clusterID,
		self:      self,
		log:       log.With().Str("component", "transport").Logger(),
		sendCh:    make(chan []raftlog.Message, peerSendQueueMsgs),
		recvCh:    make(chan raftlog.Message, peerRecvQueueMsgs),
		done:      make(chan struct{}),
	}
	router, err := zctx.NewSocket(zmq.ROUTER)
	if err != nil {
		return nil, fmt.Errorf("broker: peer socket: %w", err)
	}
	if err := setSocketDefaults(router); err != nil {
		router.Close()
		return nil, err
	}
	if err := router.Bind(listen); err != nil {
		router.Close()
		return nil, fmt.Errorf("broker: bind internal port %s: %w (is another broker running, or the port taken?)", listen, err)
	}
	dealers := make(map[uint64]*zmq.Socket, len(peers))
	for id, addr := range peers {
		d, err := zctx.NewSocket(zmq.DEALER)
		if err == nil {
			err = setSocketDefaults(d)
		}
		if err == nil {
			err = d.SetIdentity(strconv.FormatUint(self, 10))
		}
		if err == nil {
			err = d.SetImmediate(true)
		}
		if err == nil {
			err = d.Connect("tcp://" + addr)
		}
		if err != nil {
			router.Close()
			for _, s := range dealers {
				s.Close()
			}
			if d != nil {
				d.Close()
			}
			return nil, fmt.Errorf("broker: connect to peer %d at %s: %w", id, addr, err)
		}
		dealers[id] = d
	}
	t.wg.Add(2)
	go t.receive(router)
	go t.send(dealers)
	return t, nil
}

func setSocketDefaults(s *zmq.Socket) error {
	for _, set := range []func() error{
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

func (t *zmqTransport) Recv() <-chan raftlog.Message { return t.recvCh }

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
				d, ok := dealers[m.To]
				if !ok {
					t.log.Error().Uint64("to", m.To).Stringer("type", m.Type).Msg("message to unknown peer dropped")
					continue
				}
				_, err := d.SendBytes(encodeFrame(t.clusterID, t.self, m), zmq.DONTWAIT)
				if err != nil {
					// EAGAIN: the peer is not connected (ZMQ_IMMEDIATE) or its
					// queue is full. Raft retries; log now and then.
					t.dropped.Add(1)
					if now := time.Now(); now.Sub(lastDropLog[m.To]) > dropLogInterval {
						lastDropLog[m.To] = now
						t.log.Debug().Uint64("peer", m.To).Err(err).Msg("peer unreachable, dropping messages")
					}
				}
			}
		}
	}
}

// receive owns the ROUTER socket.
func (t *zmqTransport) receive(router *zmq.Socket) {
	defer t.wg.Done()
	defer router.Close()
	poller := zmq.NewPoller()
	poller.Add(router, zmq.POLLIN)
	lastBadLog := map[string]time.Time{}
	for {
		select {
		case <-t.done:
			return
		default:
		}
		polled, err := poller.Poll(peerPollInterval)
		if err != nil {
			if errors.Is(err, zmq.ETERM) {
				return
			}
			continue
		}
		if len(polled) == 0 {
			continue
		}
		for {
			frames, err := router.RecvMessageBytes(zmq.DONTWAIT)
			if err != nil {
				break
			}
			if len(frames) != 2 {
				continue
			}
			m, err := decodeFrame(t.clusterID, frames[1])
			if err != nil || m.To != t.self {
				if err == nil {
					err = fmt.Errorf("%w: addressed to node %d", ErrBadFrame, m.To)
				}
				peer := string(frames[0])
				if now := time.Now(); now.Sub(lastBadLog[peer]) > dropLogInterval {
					lastBadLog[peer] = now
					t.log.Warn().Str("peer_identity", peer).Err(err).Msg("peer frame dropped")
				}
				continue
			}
			select {
			case t.recvCh <- m:
			default:
				t.dropped.Add(1)
			}
		}
	}
}
