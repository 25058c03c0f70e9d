package verify

import (
	"fmt"
	"sort"
)

// QueueResult is the total-queue verdict over the whole history: every
// acknowledged put is popped exactly once (by the workload or the final
// drain), nothing popped was never sent.
type QueueResult struct {
	Attempted int `json:"puts_attempted"`
	Acked     int `json:"puts_acked"`
	Popped    int `json:"messages_popped"`
	// Recovered: puts whose outcome was unknown but whose message was popped.
	Recovered int `json:"recovered"`
	// Lost: acknowledged puts never popped, by where they sit in their
	// topic relative to the messages that were popped (by put call time).
	LostPrefix int `json:"lost_prefix"`
	LostMiddle int `json:"lost_middle"`
	LostSuffix int `json:"lost_suffix"`
	// LostExplained: acknowledged puts never popped on a topic that had as
	// many pops of unknown outcome (they may have taken them).
	LostExplained int      `json:"lost_explained_by_unknown_pops"`
	Duplicated    int      `json:"duplicated"`
	NeverSent     int      `json:"never_sent"`
	WrongTopic    int      `json:"wrong_topic"`
	Examples      []string `json:"examples,omitempty"`
}

// Lost is every unexplained lost message.
func (q QueueResult) Lost() int { return q.LostPrefix + q.LostMiddle + q.LostSuffix }

// OK reports a clean total-queue check.
func (q QueueResult) OK() bool {
	return q.Lost() == 0 && q.Duplicated == 0 && q.NeverSent == 0 && q.WrongTopic == 0
}

const maxExamples = 20

// checkQueue runs in time linear in the history (plus a sort per topic).
func checkQueue(ops []Op) QueueResult {
	var r QueueResult
	example := func(format string, args ...any) {
		if len(r.Examples) < maxExamples {
			r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
		}
	}
	puts := map[string]*Op{} // message → its put
	popped := map[string]int{}
	unknownPops := map[string]int{}
	for i := range ops {
		op := &ops[i]
		if op.Kind != OpPut {
			continue
		}
		r.Attempted++
		if op.Status == StatusOK {
			r.Acked++
		}
		puts[op.Value] = op
	}
	for i := range ops {
		op := &ops[i]
		if op.Kind != OpPop {
			continue
		}
		if op.Status == StatusUnknown {
			unknownPops[op.Topic]++
			continue
		}
		if op.Status != StatusOK {
			continue
		}
		r.Popped++
		popped[op.Value]++
		put, ok := puts[op.Value]
		switch {
		case !ok:
			r.NeverSent++
			example("never sent: %q popped from %s by op %d (node %d)", op.Value, op.Topic, op.ID, op.Node)
		case put.Topic != op.Topic:
			r.WrongTopic++
			example("wrong topic: %q put to %s, popped from %s by op %d", op.Value, put.Topic, op.Topic, op.ID)
		case popped[op.Value] == 2:
			r.Duplicated++
			example("duplicate: %q (put op %d) popped again by op %d (node %d)", op.Value, put.ID, op.ID, op.Node)
		}
	}
	// Lost messages, per topic, placed relative to the popped ones.
	byTopic := map[string][]*Op{}
	for _, p := range puts {
		if p.Status == StatusOK || popped[p.Value] > 0 {
			byTopic[p.Topic] = append(byTopic[p.Topic], p)
		}
		if p.Status == StatusUnknown && popped[p.Value] > 0 {
			r.Recovered++
		}
	}
	topics := make([]string, 0, len(byTopic))
	for t := range byTopic {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		ps := byTopic[t]
		sort.Slice(ps, func(a, b int) bool { return ps[a].Call < ps[b].Call })
		first, last := -1, -1
		for i, p := range ps {
			if popped[p.Value] > 0 {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		var lost []int
		for i, p := range ps {
			if p.Status == StatusOK && popped[p.Value] == 0 {
				lost = append(lost, i)
			}
		}
		if len(lost) == 0 {
			continue
		}
		if len(lost) <= unknownPops[t] {
			r.LostExplained += len(lost)
			continue
		}
		for _, i := range lost {
			switch {
			case first < 0 || i < first:
				r.LostPrefix++
			case i > last:
				r.LostSuffix++
			default:
				r.LostMiddle++
			}
			example("lost: %q acknowledged by node %d at %.3fs (put op %d) was never popped from %s",
				ps[i].Value, ps[i].Node, ps[i].Return.Seconds(), ps[i].ID, t)
		}
	}
	return r
}

// checkMinorityAcks finds acknowledgements from a node that could not reach
// a quorum for the whole life of the operation (call after the cut, reply
// before the heal): such a node cannot have committed anything.
func checkMinorityAcks(ops []Op, events []Event) []string {
	var out []string
	for _, ev := range events {
		if len(ev.Minority) == 0 || ev.End == 0 {
			continue
		}
		minor := map[int]bool{}
		for _, m := range ev.Minority {
			minor[m] = true
		}
		for _, op := range ops {
			if op.Status == StatusUnknown || op.Node < 0 || !minor[op.Node] {
				continue
			}
			if op.Call >= ev.Start && op.Return <= ev.End {
				out = append(out, fmt.Sprintf("op %d (%s %s on %s) answered %s by node %d at %.3fs while it was cut off in a minority (%s %.3fs–%.3fs)",
					op.ID, op.Kind, op.Value, op.Topic, op.Status, op.Node, op.Return.Seconds(), ev.Fault, ev.Start.Seconds(), ev.End.Seconds()))
			}
		}
	}
	return out
}
