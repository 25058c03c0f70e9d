package broker

import (
	"errors"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/snapshot"
)

// snapReceiver takes snapshot chunks off the node loop: it writes them to
// the store's temp file (snapshot.Receiver), acks by offset, and when the
// whole file arrived and verified, writes the body out ready to swap in and
// hands it to the node loop. It owns the receive; the node loop never does
// file I/O for it.
type snapReceiver struct {
	store     *snapshot.Store
	trans     transport
	clusterID string
	self      uint64
	dataDir   string
	log       zerolog.Logger
	installCh chan<- pendingInstall
	// diskFull reports the disk guard tripped: a chunk is then refused
	// (ackFailed) rather than written; the leader tries again later.
	diskFull func() bool

	recv *snapshot.Receiver
	done snapshot.Meta // the last snapshot handed to the node loop
}

func (r *snapReceiver) run(stop <-chan struct{}) {
	defer func() {
		if r.recv != nil {
			r.recv.Abort()
		}
	}()
	for {
		select {
		case <-stop:
			return
		case c := <-r.trans.Chunks():
			if !r.handle(c, stop) {
				return
			}
		}
	}
}

// handle stores one chunk and acks it. It returns false when stop closed.
func (r *snapReceiver) handle(c snapChunk, stop <-chan struct{}) bool {
	ack := snapAck{to: c.msg.From, index: c.meta.Index, term: c.meta.Term, crc: c.meta.CRC}
	send := func(status ackStatus, offset int64) {
		ack.status, ack.offset = status, offset
		r.trans.SendFrame(ack.to, encodeSnapAck(r.clusterID, r.self, ack))
	}
	if r.done.Same(c.meta) && c.offset > 0 {
		send(ackDone, c.meta.Size) // a late or repeated chunk of a finished transfer
		return true
	}
	if r.diskFull != nil && r.diskFull() {
		if r.recv != nil {
			r.recv.Abort()
			r.recv = nil
		}
		send(ackFailed, 0)
		return true
	}
	if r.done.Same(c.meta) {
		// A new transfer of the snapshot we already received (the core did
		// not take it last time, or took it and lost it to a newer
		// leader's log): hand its body over again while it waits to be
		// swapped in, else receive it again.
		if path := installPath(r.dataDir, c.meta); fileExists(path) {
			return r.handOver(c, path, send, stop)
		}
		r.done = snapshot.Meta{}
	}
	rc, err := r.store.NewReceiver(c.meta)
	if err != nil {
		r.log.Warn().Err(err).Int("from", nodeIndex(c.msg.From)).Msg("cannot receive snapshot")
		send(ackFailed, 0)
		return true
	}
	r.recv = rc
	if err := rc.Write(c.offset, c.data); err != nil {
		if errors.Is(err, snapshot.ErrChunk) && c.offset > rc.Offset() {
			send(ackProgress, rc.Offset()) // a gap: resend from here
			return true
		}
		r.log.Warn().Err(err).Msg("receive snapshot chunk")
		rc.Abort()
		r.recv = nil
		send(ackFailed, 0)
		return true
	}
	if rc.Offset() < c.meta.Size {
		send(ackProgress, rc.Offset())
		return true
	}
	r.recv = nil
	if _, err := rc.Finish(); err != nil {
		r.log.Warn().Err(err).Msg("received snapshot does not verify")
		rc.Abort()
		send(ackFailed, 0)
		return true
	}
	return r.deliver(c, send, stop)
}

// deliver writes the received snapshot's body out ready to swap in,
// deletes the received file (the body is all that is needed now) and hands
// the body to the node loop.
func (r *snapReceiver) deliver(c snapChunk, send func(ackStatus, int64), stop <-chan struct{}) bool {
	path := installPath(r.dataDir, c.meta)
	if err := r.store.ExtractBody(c.meta, path); err != nil {
		r.log.Error().Err(err).Msg("cannot write the received snapshot out as state.db")
		send(ackFailed, 0)
		return true
	}
	if err := r.store.Remove(c.meta.Name()); err != nil {
		r.log.Warn().Err(err).Msg("cannot delete the received snapshot file")
	}
	return r.handOver(c, path, send, stop)
}

// handOver gives the body at path to the node loop and acks the transfer.
func (r *snapReceiver) handOver(c snapChunk, path string, send func(ackStatus, int64), stop <-chan struct{}) bool {
	select {
	case r.installCh <- pendingInstall{msg: c.msg, meta: c.meta, path: path}:
	case <-stop:
		return false
	}
	r.done = c.meta
	r.log.Info().Uint64("index", c.meta.Index).Uint64("term", c.meta.Term).Int64("bytes", c.meta.Size).Msg("snapshot received")
	send(ackDone, c.meta.Size)
	return true
}
