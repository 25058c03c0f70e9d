package rafttest

import (
	"fmt"
	"strings"

	"github.com/raftmq/raftmq/raftlog"
)

// traceEvents is how many recent events a failure report shows.
const traceEvents = 60

// event is one simulation event, kept unformatted so tracing costs little
// until a failure asks for the text.
type event struct {
	step int
	kind string
	node uint64
	msg  *msgSummary // for deliveries and drops
	arg  uint64      // kind-specific: peer, index, count
	err  error
}

type msgSummary struct {
	typ                                raftlog.MessageType
	from, to, term, logTerm, index, ci uint64
	ents                               int
	reject                             bool
	hint                               uint64
}

func summarize(m raftlog.Message) *msgSummary {
	return &msgSummary{typ: m.Type, from: m.From, to: m.To, term: m.Term, logTerm: m.LogTerm,
		index: m.Index, ci: m.Commit, ents: len(m.Entries), reject: m.Reject, hint: m.RejectHint}
}

func (e event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6d %-10s", e.step, e.kind)
	if e.node != 0 {
		fmt.Fprintf(&b, " n%d", e.node)
	}
	if e.arg != 0 {
		fmt.Fprintf(&b, " %d", e.arg)
	}
	if m := e.msg; m != nil {
		fmt.Fprintf(&b, " %v %d->%d term=%d logterm=%d index=%d commit=%d ents=%d",
			m.typ, m.from, m.to, m.term, m.logTerm, m.index, m.ci, m.ents)
		if m.reject {
			fmt.Fprintf(&b, " reject hint=%d", m.hint)
		}
	}
	if e.err != nil {
		fmt.Fprintf(&b, " err=%v", e.err)
	}
	return b.String()
}

// trace is a ring of the last traceEvents events.
type trace struct {
	ring [traceEvents]event
	n    int
}

func (t *trace) add(e event) {
	t.ring[t.n%traceEvents] = e
	t.n++
}

func (t *trace) String() string {
	var b strings.Builder
	start := max(0, t.n-traceEvents)
	for i := start; i < t.n; i++ {
		b.WriteString(t.ring[i%traceEvents].String())
		b.WriteByte('\n')
	}
	return b.String()
}
