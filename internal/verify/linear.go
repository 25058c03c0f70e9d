package verify

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// qInput / qOutput are a queue operation as porcupine sees it.
type qInput struct {
	Kind  OpKind
	Topic string
	Value string // put: the message
}

type qOutput struct {
	Status OpStatus
	Value  string // pop ok: the message
}

// qState is an immutable FIFO queue.
type qState []string

// queueModel is a FIFO queue per topic (one partition per topic). An
// operation with an unknown outcome may or may not have taken effect, so
// its step has two successor states.
var queueModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byTopic := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			t := op.Input.(qInput).Topic
			if _, ok := byTopic[t]; !ok {
				order = append(order, t)
			}
			byTopic[t] = append(byTopic[t], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, t := range order {
			out = append(out, byTopic[t])
		}
		return out
	},
	Init: func() []any { return []any{qState(nil)} },
	Step: func(state, input, output any) []any {
		q, in, out := state.(qState), input.(qInput), output.(qOutput)
		if in.Kind == OpPut {
			appended := append(append(qState(nil), q...), in.Value)
			switch out.Status {
			case StatusOK:
				return []any{appended}
			case StatusUnknown:
				return []any{q, appended}
			}
			return nil // success:false: the topic exists, so a put never fails
		}
		switch out.Status {
		case StatusOK:
			if len(q) > 0 && q[0] == out.Value {
				return []any{q[1:]}
			}
			return nil
		case StatusFail:
			if len(q) == 0 {
				return []any{q}
			}
			return nil
		}
		if len(q) == 0 {
			return []any{q}
		}
		return []any{q, q[1:]}
	},
	Equal: func(a, b any) bool {
		x, y := a.(qState), b.(qState)
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	},
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		for _, v := range state.(qState) {
			h.Write([]byte(v))
			h.Write([]byte{0})
		}
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(qInput), output.(qOutput)
		if in.Kind == OpPut {
			return fmt.Sprintf("put(%s) → %s", in.Value, out.Status)
		}
		if out.Status == StatusOK {
			return fmt.Sprintf("pop() → %s", out.Value)
		}
		return fmt.Sprintf("pop() → %s", out.Status)
	},
	DescribeState: func(state any) string {
		q := state.(qState)
		if len(q) > 8 {
			return fmt.Sprintf("[%s … %d more]", strings.Join(q[:8], " "), len(q)-8)
		}
		return "[" + strings.Join(q, " ") + "]"
	},
}

// LinearResult is the per-topic linearizability verdict.
type LinearResult struct {
	Topics  int      `json:"topics"`
	Ok      int      `json:"ok"`
	Illegal []string `json:"illegal,omitempty"` // topics not linearizable
	Unknown []string `json:"unknown,omitempty"` // topics the checker could not decide in time
	// Visualization is the HTML file written when a topic was illegal.
	Visualization string `json:"visualization,omitempty"`
}

// checkLinear checks every topic's history (drain included) against the
// FIFO model, with timeout per run. Unknown outcomes return after every
// other operation (their effect may land any time after the call). With a
// violation it writes porcupine's HTML visualization of the illegal topics
// into outDir.
func checkLinear(ops []Op, timeout time.Duration, outDir string) LinearResult {
	var maxT time.Duration
	for _, op := range ops {
		maxT = max(maxT, op.Call, op.Return)
	}
	model := queueModel.ToModel()
	byTopic := map[string][]porcupine.Operation{}
	for _, op := range ops {
		ret := op.Return
		if op.Status == StatusUnknown {
			ret = maxT + time.Second
		}
		byTopic[op.Topic] = append(byTopic[op.Topic], porcupine.Operation{
			ClientId: op.Client,
			Input:    qInput{Kind: op.Kind, Topic: op.Topic, Value: op.Value},
			Output:   qOutput{Status: op.Status, Value: map[bool]string{true: op.Value}[op.Kind == OpPop]},
			Call:     int64(op.Call),
			Return:   int64(ret),
			Metadata: fmt.Sprintf("op %d node %d", op.ID, op.Node),
		})
	}
	topics := make([]string, 0, len(byTopic))
	for t := range byTopic {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	res := LinearResult{Topics: len(topics)}
	var illegal []porcupine.Operation
	for _, t := range topics {
		verdict, _ := porcupine.CheckOperationsVerbose(model, byTopic[t], timeout)
		switch verdict {
		case porcupine.Ok:
			res.Ok++
		case porcupine.Illegal:
			res.Illegal = append(res.Illegal, t)
			illegal = append(illegal, byTopic[t]...)
		default:
			res.Unknown = append(res.Unknown, t)
		}
	}
	if len(illegal) > 0 && outDir != "" {
		_, info := porcupine.CheckOperationsVerbose(model, illegal, timeout)
		path := filepath.Join(outDir, "linearizability.html")
		if err := os.MkdirAll(outDir, 0o755); err == nil {
			if err := porcupine.VisualizePath(model, info, path); err == nil {
				res.Visualization = path
			}
		}
	}
	return res
}
