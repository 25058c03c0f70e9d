package rafttest

import (
	"fmt"
	"math/rand"

	"github.com/raftmq/raftmq/raftlog"
)

// maxInflightMsgs bounds the messages the network holds; beyond it the
// oldest is dropped, like a full socket buffer.
const maxInflightMsgs = 4096

// envelope is one encoded message in flight.
type envelope struct {
	from, to uint64
	// fromIncarnation is the sender's incarnation when it sent, so a snapshot
	// report never reaches a later incarnation of the sender.
	fromIncarnation int
	typ             raftlog.MessageType
	data            []byte // MarshalMessage output
}

// network is an unreliable in-memory network. Every message is encoded
// on send and decoded on delivery, so the codec is exercised and nothing
// the core owns is aliased by the receiver.
type network struct {
	rng      *rand.Rand
	inflight []envelope
	// cut[(a,b)] drops messages from a to b. Partitions are symmetric;
	// isolating one direction models a one-way link failure.
	cut map[[2]uint64]bool

	dropPct, dupPct, reorderPct int // per delivery, in percent
}

func newNetwork(rng *rand.Rand, dropPct, dupPct, reorderPct int) *network {
	return &network{rng: rng, cut: make(map[[2]uint64]bool), dropPct: dropPct, dupPct: dupPct, reorderPct: reorderPct}
}

func (nw *network) send(m raftlog.Message, incarnation int) {
	if len(nw.inflight) >= maxInflightMsgs {
		nw.inflight = nw.inflight[1:]
	}
	nw.inflight = append(nw.inflight, envelope{
		from: m.From, to: m.To, fromIncarnation: incarnation, typ: m.Type, data: raftlog.MarshalMessage(m),
	})
}

// next removes and returns a message to deliver: usually the oldest, with
// reorderPct percent chance any other (which delays the ones skipped). With
// dupPct percent chance a copy stays in flight.
func (nw *network) next(fifo bool) (envelope, bool) {
	if len(nw.inflight) == 0 {
		return envelope{}, false
	}
	i := 0
	if !fifo && nw.rng.Intn(100) < nw.reorderPct {
		i = nw.rng.Intn(len(nw.inflight))
	}
	env := nw.inflight[i]
	if !fifo && nw.rng.Intn(100) < nw.dupPct {
		return env, true
	}
	nw.inflight = append(nw.inflight[:i], nw.inflight[i+1:]...)
	return env, true
}

// lost reports whether env is dropped: its link is cut or the dice say so.
func (nw *network) lost(env envelope, reliable bool) bool {
	if nw.cut[[2]uint64{env.from, env.to}] {
		return true
	}
	return !reliable && nw.rng.Intn(100) < nw.dropPct
}

// dropRandom drops one message in flight, if any.
func (nw *network) dropRandom() (envelope, bool) {
	if len(nw.inflight) == 0 {
		return envelope{}, false
	}
	i := nw.rng.Intn(len(nw.inflight))
	env := nw.inflight[i]
	nw.inflight = append(nw.inflight[:i], nw.inflight[i+1:]...)
	return env, true
}

// partition cuts every link between side and the other nodes. With oneWay
// only the links from side are cut.
func (nw *network) partition(ids []uint64, side map[uint64]bool, oneWay bool) {
	for _, a := range ids {
		for _, b := range ids {
			if side[a] && !side[b] {
				nw.cut[[2]uint64{a, b}] = true
				if !oneWay {
					nw.cut[[2]uint64{b, a}] = true
				}
			}
		}
	}
}

func (nw *network) heal() { clear(nw.cut) }

func (nw *network) partitioned() bool { return len(nw.cut) > 0 }

func (nw *network) String() string {
	return fmt.Sprintf("inflight=%d cut=%d", len(nw.inflight), len(nw.cut))
}
