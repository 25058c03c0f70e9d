package broker

import (
	"container/heap"
	"sort"
	"time"
)

// waiters holds the long-polling GET and RECEIVE requests (decision 17):
// their command found no ready message, so they wait here, per topic in
// arrival order, until an applied entry readies a message in their topic
// (the node then proposes them again) or their wait ends. Nothing runs for
// a waiting request: it costs memory, not CPU. The node loop owns it.
type waiters struct {
	nextArrival uint64
	byTopic     map[string][]*waiter // each in arrival order
	byDeadline  waiterHeap           // every parked waiter (and answered ones, skipped lazily)
	n           int                  // parked waiters
}

type waiter struct {
	cr      clientRequest
	arrival uint64    // order of arrival at this node
	until   time.Time // the wait ends: answer {"success": false}
	parked  bool      // in byTopic (false while proposed, or once answered)
	index   int       // in byDeadline
}

func newWaiters() *waiters { return &waiters{byTopic: map[string][]*waiter{}} }

// arrive makes a waiter for a request that has just arrived.
func (ws *waiters) arrive(cr clientRequest, now time.Time) *waiter {
	ws.nextArrival++
	return &waiter{cr: cr, arrival: ws.nextArrival, until: now.Add(time.Duration(cr.req.WaitMs) * time.Millisecond), index: -1}
}

// park puts w in its topic's queue in arrival order.
func (ws *waiters) park(w *waiter) {
	q := ws.byTopic[w.cr.req.Topic]
	i := sort.Search(len(q), func(i int) bool { return q[i].arrival > w.arrival })
	q = append(q, nil)
	copy(q[i+1:], q[i:])
	q[i] = w
	ws.byTopic[w.cr.req.Topic] = q
	w.parked = true
	ws.n++
	heap.Push(&ws.byDeadline, w)
}

// unpark removes w from its topic's queue and the deadline heap.
func (ws *waiters) unpark(w *waiter) {
	q := ws.byTopic[w.cr.req.Topic]
	for i, x := range q {
		if x == w {
			q = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(ws.byTopic, w.cr.req.Topic)
	} else {
		ws.byTopic[w.cr.req.Topic] = q
	}
	heap.Remove(&ws.byDeadline, w.index)
	w.parked = false
	ws.n--
}

// take removes and returns up to max waiters of topic, oldest first.
func (ws *waiters) take(topic string, max int) []*waiter {
	q := ws.byTopic[topic]
	if len(q) == 0 || max <= 0 {
		return nil
	}
	out := append([]*waiter(nil), q[:min(max, len(q))]...)
	for _, w := range out {
		ws.unpark(w)
	}
	return out
}

// anyExpired reports whether a waiter's wait ended by now.
func (ws *waiters) anyExpired(now time.Time) bool {
	return len(ws.byDeadline) > 0 && !now.Before(ws.byDeadline[0].until)
}

// expired removes and returns the waiters whose wait ended by now.
func (ws *waiters) expired(now time.Time) []*waiter {
	var out []*waiter
	for len(ws.byDeadline) > 0 && !now.Before(ws.byDeadline[0].until) {
		w := ws.byDeadline[0]
		ws.unpark(w)
		out = append(out, w)
	}
	return out
}

// takeAll removes and returns every parked waiter, in arrival order.
func (ws *waiters) takeAll() []*waiter {
	var out []*waiter
	for len(ws.byDeadline) > 0 {
		w := ws.byDeadline[0]
		ws.unpark(w)
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].arrival < out[j].arrival })
	return out
}

func (ws *waiters) len() int { return ws.n }

// waiterHeap orders waiters by the end of their wait.
type waiterHeap []*waiter

func (h waiterHeap) Len() int           { return len(h) }
func (h waiterHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h waiterHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waiterHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waiterHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}
