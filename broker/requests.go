package broker

import "time"

// requests is the registry of client requests the node loop has taken and
// not yet answered (like etcd's pkg/wait): writes waiting for their entry
// to apply, by proposal id, and reads waiting for their read index and
// then for the apply to reach it. It only keeps them; the node loop decides
// what to answer. Not safe for concurrent use: the node loop owns it.
type requests struct {
	// nextProposal is the next proposal id; ids start at a random base each
	// boot so that a waiter never matches another node's or boot's entry.
	nextProposal uint64
	writes       map[uint64]*clientRequest // proposal id → waiting request
	writeOrder   []waitRef                 // writes in deadline order (timeouts are equal); answered ones are skipped

	nextRead   uint64
	reads      map[uint64]*readWaiter // read-index context → request
	readsReady []*readWaiter          // read index known; waiting for applied >= index
}

type waitRef struct {
	id       uint64
	deadline time.Time
}

type readWaiter struct {
	id    uint64
	cr    clientRequest
	index uint64
}

func newRequests(proposalBase uint64) *requests {
	return &requests{nextProposal: proposalBase, writes: map[uint64]*clientRequest{}, reads: map[uint64]*readWaiter{}}
}

// addWrite registers a write and returns its proposal id.
func (r *requests) addWrite(cr clientRequest) uint64 {
	id := r.nextProposal
	r.nextProposal++
	c := cr
	r.writes[id] = &c
	r.writeOrder = append(r.writeOrder, waitRef{id: id, deadline: cr.deadline})
	return id
}

// takeWrite removes and returns the write with proposal id (false if it is
// not waiting here: proposed by another node or boot, or answered).
func (r *requests) takeWrite(id uint64) (*clientRequest, bool) {
	w, ok := r.writes[id]
	if ok {
		delete(r.writes, id)
	}
	return w, ok
}

// pendingWrites is the number of writes waiting.
func (r *requests) pendingWrites() int { return len(r.writes) }

// addRead registers a read and returns its read-index context id.
func (r *requests) addRead(cr clientRequest) uint64 {
	r.nextRead++
	id := r.nextRead
	r.reads[id] = &readWaiter{id: id, cr: cr}
	return id
}

// readIndexKnown moves read id to the reads waiting for the apply to reach
// index.
func (r *requests) readIndexKnown(id, index uint64) {
	w, ok := r.reads[id]
	if !ok {
		return
	}
	delete(r.reads, id)
	w.index = index
	r.readsReady = append(r.readsReady, w)
}

// takeServable removes and returns the reads whose read index is applied.
func (r *requests) takeServable(applied uint64) []clientRequest {
	if len(r.readsReady) == 0 {
		return nil
	}
	var out []clientRequest
	kept := r.readsReady[:0]
	for _, w := range r.readsReady {
		if w.index > applied {
			kept = append(kept, w)
			continue
		}
		out = append(out, w.cr)
	}
	r.readsReady = kept
	return out
}

// takeReads removes and returns every read, waiting for its index or for
// the apply.
func (r *requests) takeReads() []clientRequest {
	var out []clientRequest
	for id, w := range r.reads {
		delete(r.reads, id)
		out = append(out, w.cr)
	}
	for _, w := range r.readsReady {
		out = append(out, w.cr)
	}
	r.readsReady = nil
	return out
}

// expired removes and returns the requests whose deadline is not after
// now: writes, reads waiting for their index, and reads waiting for the
// apply.
func (r *requests) expired(now time.Time) (writes, readsUnconfirmed, readsUnapplied []clientRequest) {
	i := 0
	for ; i < len(r.writeOrder) && !now.Before(r.writeOrder[i].deadline); i++ {
		if w, ok := r.takeWrite(r.writeOrder[i].id); ok {
			writes = append(writes, *w)
		}
	}
	r.writeOrder = r.writeOrder[i:]
	for id, w := range r.reads {
		if !now.Before(w.cr.deadline) {
			delete(r.reads, id)
			readsUnconfirmed = append(readsUnconfirmed, w.cr)
		}
	}
	kept := r.readsReady[:0]
	for _, w := range r.readsReady {
		if !now.Before(w.cr.deadline) {
			readsUnapplied = append(readsUnapplied, w.cr)
			continue
		}
		kept = append(kept, w)
	}
	r.readsReady = kept
	return writes, readsUnconfirmed, readsUnapplied
}

// takeAll removes and returns every request.
func (r *requests) takeAll() []clientRequest {
	var out []clientRequest
	for id, w := range r.writes {
		delete(r.writes, id)
		out = append(out, *w)
	}
	r.writeOrder = nil
	return append(out, r.takeReads()...)
}
