package verify

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/proccluster"
)

// row is one operation of a hand-written history: client, kind, value,
// call ms, return ms, status, node.
type row struct {
	client int
	kind   OpKind
	value  string
	call   int
	ret    int
	st     OpStatus
	node   int
}

func build(topic string, rows ...row) []Op {
	var ops []Op
	for i, r := range rows {
		ops = append(ops, Op{ID: i, Client: r.client, Kind: r.kind, Topic: topic, Value: r.value,
			Call: time.Duration(r.call) * time.Millisecond, Return: time.Duration(r.ret) * time.Millisecond, Status: r.st, Node: r.node})
	}
	return ops
}

func TestCheckLinear(t *testing.T) {
	tests := []struct {
		name    string
		ops     []Op
		illegal bool
	}{
		{"fifo in order", build("t",
			row{0, OpPut, "a", 0, 10, StatusOK, 0},
			row{0, OpPut, "b", 11, 20, StatusOK, 0},
			row{1, OpPop, "a", 21, 30, StatusOK, 0},
			row{1, OpPop, "b", 31, 40, StatusOK, 0},
			row{1, OpPop, "", 41, 50, StatusFail, 0}), false},
		{"pop out of order", build("t",
			row{0, OpPut, "a", 0, 10, StatusOK, 0},
			row{0, OpPut, "b", 11, 20, StatusOK, 0},
			row{1, OpPop, "b", 21, 30, StatusOK, 0}), true},
		{"concurrent puts pop in either order", build("t",
			row{0, OpPut, "a", 0, 10, StatusOK, 0},
			row{1, OpPut, "b", 0, 10, StatusOK, 0},
			row{2, OpPop, "b", 11, 20, StatusOK, 0},
			row{2, OpPop, "a", 21, 30, StatusOK, 0}), false},
		{"pop of an acked message reports empty", build("t",
			row{0, OpPut, "a", 0, 10, StatusOK, 0},
			row{1, OpPop, "", 11, 20, StatusFail, 0}), true},
		{"duplicate delivery", build("t",
			row{0, OpPut, "a", 0, 10, StatusOK, 0},
			row{1, OpPop, "a", 11, 20, StatusOK, 0},
			row{1, OpPop, "a", 21, 30, StatusOK, 0}), true},
		{"unknown put may have happened", build("t",
			row{0, OpPut, "a", 0, 0, StatusUnknown, -1},
			row{1, OpPop, "a", 11, 20, StatusOK, 0}), false},
		{"unknown put may not have happened", build("t",
			row{0, OpPut, "a", 0, 0, StatusUnknown, -1},
			row{1, OpPop, "", 11, 20, StatusFail, 0}), false},
		{"unknown pop may have taken the head", build("t",
			row{0, OpPut, "a", 0, 10, StatusOK, 0},
			row{0, OpPut, "b", 11, 20, StatusOK, 0},
			row{1, OpPop, "", 21, 0, StatusUnknown, -1},
			row{2, OpPop, "b", 31, 40, StatusOK, 0}), false},
		{"a put that failed cannot be popped", build("t",
			row{0, OpPut, "a", 0, 10, StatusFail, 0},
			row{1, OpPop, "a", 11, 20, StatusOK, 0}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			res := checkLinear(tt.ops, 5*time.Second, dir)
			if got := len(res.Illegal) > 0; got != tt.illegal {
				t.Fatalf("illegal = %v, want %v (%+v)", got, tt.illegal, res)
			}
			if tt.illegal {
				b, err := os.ReadFile(filepath.Join(dir, "linearizability.html"))
				if err != nil || !strings.Contains(string(b), "<html") {
					t.Fatalf("no visualization written for an illegal history: %v", err)
				}
			}
		})
	}
}

func TestCheckQueue(t *testing.T) {
	tests := []struct {
		name  string
		ops   []Op
		check func(QueueResult) bool
	}{
		{"clean", build("t",
			row{0, OpPut, "a", 0, 10, StatusOK, 0},
			row{1, OpPop, "a", 11, 20, StatusOK, 0}),
			func(q QueueResult) bool { return q.OK() && q.Acked == 1 && q.Popped == 1 }},
		{"lost in the middle", build("t",
			row{0, OpPut, "a", 0, 10, StatusOK, 0},
			row{0, OpPut, "b", 11, 20, StatusOK, 0},
			row{0, OpPut, "c", 21, 30, StatusOK, 0},
			row{1, OpPop, "a", 31, 40, StatusOK, 0},
			row{1, OpPop, "c", 41, 50, StatusOK, 0}),
			func(q QueueResult) bool { return q.LostMiddle == 1 && q.Lost() == 1 && !q.OK() }},
		{"lost prefix and suffix", build("t",
			row{0, OpPut, "a", 0, 10, StatusOK, 0},
			row{0, OpPut, "b", 11, 20, StatusOK, 0},
			row{0, OpPut, "c", 21, 30, StatusOK, 0},
			row{1, OpPop, "b", 31, 40, StatusOK, 0}),
			func(q QueueResult) bool { return q.LostPrefix == 1 && q.LostSuffix == 1 && q.LostMiddle == 0 }},
		{"lost but an unknown pop may have taken it", build("t",
			row{0, OpPut, "a", 0, 10, StatusOK, 0},
			row{1, OpPop, "", 11, 0, StatusUnknown, -1}),
			func(q QueueResult) bool { return q.OK() && q.LostExplained == 1 }},
		{"duplicate", build("t",
			row{0, OpPut, "a", 0, 10, StatusOK, 0},
			row{1, OpPop, "a", 11, 20, StatusOK, 0},
			row{2, OpPop, "a", 11, 20, StatusOK, 1}),
			func(q QueueResult) bool { return q.Duplicated == 1 && !q.OK() }},
		{"never sent", build("t",
			row{1, OpPop, "zz", 11, 20, StatusOK, 0}),
			func(q QueueResult) bool { return q.NeverSent == 1 && !q.OK() }},
		{"unknown put recovered", build("t",
			row{0, OpPut, "a", 0, 0, StatusUnknown, -1},
			row{1, OpPop, "a", 11, 20, StatusOK, 0}),
			func(q QueueResult) bool { return q.OK() && q.Recovered == 1 }},
		{"wrong topic", append(build("t", row{0, OpPut, "a", 0, 10, StatusOK, 0}),
			build("u", row{1, OpPop, "a", 11, 20, StatusOK, 0})...),
			func(q QueueResult) bool { return q.WrongTopic == 1 && !q.OK() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if q := checkQueue(tt.ops); !tt.check(q) {
				t.Fatalf("unexpected verdict %+v", q)
			}
		})
	}
}

func TestMinority(t *testing.T) {
	tests := []struct {
		name  string
		nodes int
		cut   [][2]int
		want  []int
	}{
		{"no cut", 3, nil, nil},
		{"one isolated of 3", 3, [][2]int{{0, 1}, {0, 2}}, []int{0}},
		{"bridge of 3", 3, [][2]int{{0, 2}}, nil},
		{"halves of 5", 5, [][2]int{{0, 2}, {0, 3}, {0, 4}, {1, 2}, {1, 3}, {1, 4}}, []int{0, 1}},
		{"ring of 5", 5, [][2]int{{0, 2}, {0, 3}, {1, 3}, {1, 4}, {2, 4}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := minority(tt.nodes, tt.cut); !slices.Equal(got, tt.want) {
				t.Fatalf("minority = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckMinorityAcks(t *testing.T) {
	ev := []Event{{Fault: "partition-leader", Start: 100 * time.Millisecond, End: 500 * time.Millisecond, Minority: []int{1}}}
	ops := build("t",
		row{0, OpPut, "before", 50, 150, StatusOK, 1},  // called before the cut: may have committed
		row{0, OpPut, "inside", 200, 300, StatusOK, 1}, // the violation
		row{1, OpPut, "major", 200, 300, StatusOK, 0},  // majority side: fine
		row{2, OpPut, "after", 200, 600, StatusOK, 1},  // answered after the heal
	)
	got := checkMinorityAcks(ops, ev)
	if len(got) != 1 || !strings.Contains(got[0], "inside") {
		t.Fatalf("minority acks = %q, want exactly the op called and answered inside the cut", got)
	}
}

func TestPartitionRingKeepsEveryNodeAMajority(t *testing.T) {
	for _, nodes := range []int{3, 5} {
		for seed := uint64(1); seed <= 20; seed++ {
			n := &nemesis{rng: newRand(seed)}
			n.c = fakeCluster(nodes)
			cut, _, _ := n.partition("partition-ring", 0)
			if len(cut) == 0 {
				t.Fatalf("%d nodes seed %d: ring cut nothing", nodes, seed)
			}
			if m := minority(nodes, cut); len(m) != 0 {
				t.Fatalf("%d nodes seed %d: ring %v leaves %v in a minority", nodes, seed, cut, m)
			}
		}
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }

func fakeCluster(nodes int) *proccluster.Cluster {
	return &proccluster.Cluster{Addrs: make([]config.Address, nodes)}
}
