package verify

import (
	"sync"
	"time"
)

// OpKind is a queue operation.
type OpKind uint8

const (
	OpPut OpKind = iota + 1
	OpPop
)

func (k OpKind) String() string {
	if k == OpPut {
		return "put"
	}
	return "pop"
}

// OpStatus is what the client learned.
type OpStatus uint8

const (
	// StatusOK: executed, success true (pop: Value is the message).
	StatusOK OpStatus = iota + 1
	// StatusFail: executed, success false (pop: the queue was empty).
	StatusFail
	// StatusUnknown: never answered; it may or may not have taken effect.
	StatusUnknown
)

func (s OpStatus) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusFail:
		return "fail"
	}
	return "unknown"
}

// Op is one operation in the history. Times are since the run started.
type Op struct {
	ID     int
	Client int // workload session index (porcupine lane)
	Kind   OpKind
	Topic  string
	Value  string // put: the message sent; pop ok: the message received
	Call   time.Duration
	Return time.Duration // meaningless while Status is StatusUnknown
	Status OpStatus
	Node   int // node that executed it, -1 if none
	// Dropped counts executed replies the client discarded on purpose.
	Dropped int
	// Drain marks the pops of the final drain (after every fault healed).
	Drain bool
}

// history is the append-only record shared by the workload goroutines.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

func newHistory() *history { return &history{start: time.Now()} }

func (h *history) now() time.Duration { return time.Since(h.start) }

// invoke records the call of an operation and returns its id.
func (h *history) invoke(client int, kind OpKind, topic, value string, drain bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := len(h.ops)
	h.ops = append(h.ops, Op{ID: id, Client: client, Kind: kind, Topic: topic, Value: value,
		Call: time.Since(h.start), Status: StatusUnknown, Node: -1, Drain: drain})
	return id
}

// complete records the answer to operation id.
func (h *history) complete(id int, st OpStatus, value string, node, dropped int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	op := &h.ops[id]
	op.Return, op.Status, op.Node, op.Dropped = time.Since(h.start), st, node, dropped
	if op.Kind == OpPop {
		op.Value = value
	}
}

// snapshot copies the ops.
func (h *history) snapshot() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}
