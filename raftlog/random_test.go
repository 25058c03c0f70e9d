package raftlog

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
)

// TestRandomizedSafety runs clusters through random partitions, message
// loss, crashes and proposals; the network checks election safety and
// state machine safety after every stabilization, and once healed every
// node must apply the same entries.
func TestRandomizedSafety(t *testing.T) {
	const steps = 600
	for seed := int64(1); seed <= 60; seed++ {
		size := []int{3, 5, 7}[seed%3]
		preVote, checkQuorum := seed%2 == 0, seed%4 < 2
		t.Run(fmt.Sprintf("seed=%d size=%d prevote=%v cq=%v", seed, size, preVote, checkQuorum), func(t *testing.T) {
			n, rng := newRandomNetwork(t, seed, size, preVote, checkQuorum)
			proposed, _ := randomFaults(n, rng, size, steps, false)
			n.heal()
			n.filter = nil
			n.tick(60)
			lead := n.leader()
			if lead == None {
				t.Fatalf("seed %d: no leader after healing:\n%v", seed, n)
			}
			n.propose(lead, "final")
			want := n.appliedData(lead)
			for _, id := range n.ids {
				sameBase := n.nodes[id].appliedBase == n.nodes[lead].appliedBase
				if got := n.appliedData(id); sameBase && !slices.Equal(got, want) {
					t.Fatalf("seed %d: node %d applied %d entries, leader %d; progress %v\n%v", seed, id, len(got), len(want), n.core(lead).prs[id], n)
				}
				if n.nodes[id].appliedIndex() != n.nodes[lead].appliedIndex() {
					t.Fatalf("seed %d: node %d applied index %d, leader %d", seed, id, n.nodes[id].appliedIndex(), n.nodes[lead].appliedIndex())
				}
			}
			if len(want) == 0 || want[len(want)-1] != "final" {
				t.Fatalf("seed %d: final entry not applied: %v", seed, want)
			}
			t.Logf("seed %d: %d proposals accepted, %d applied", seed, proposed, len(want))
		})
	}
}

// newRandomNetwork is a network of size nodes with small messages and a
// small inflight window (so batching and flow control are exercised).
func newRandomNetwork(t *testing.T, seed int64, size int, preVote, checkQuorum bool) (*network, *rand.Rand) {
	t.Helper()
	n := newNetwork(t, seed, ids(size), func(c *Config) {
		c.PreVote, c.CheckQuorum = preVote, checkQuorum
		c.MaxSizePerMsg, c.MaxInflightMsgs = 64, 4
	})
	return n, rand.New(rand.NewSource(seed))
}

// randomFaults drives n for steps random steps: ticks, proposals to the
// leader, isolations, heals, message loss, crash-restarts, compactions and,
// with wipes, data-directory wipes (one recovering node at a time). It
// returns the proposals accepted and the wipes done; the network checks
// safety after every stabilization.
func randomFaults(n *network, rng *rand.Rand, size, steps int, wipes bool) (proposed, wiped int) {
	dropPct := 0
	n.filter = func(m Message) (Message, bool) { return m, rng.Intn(100) >= dropPct }
	recovering := func() bool {
		for _, id := range n.ids {
			if n.core(id).Recovering() {
				return true
			}
		}
		return false
	}
	node := func() uint64 { return uint64(rng.Intn(size) + 1) }
	for step := range steps {
		switch r := rng.Intn(100); {
		case r < 50:
			n.tick(1)
		case r < 72:
			if lead := n.leader(); lead != None {
				if n.core(lead).Propose([]byte(fmt.Sprintf("v%d", step))) == nil {
					proposed++
				}
				n.stabilize()
			}
		case r < 79:
			n.isolate(node())
		case r < 86:
			n.heal()
		case r < 90:
			dropPct = rng.Intn(35)
		case r < 97:
			if wipes && r >= 94 && !recovering() {
				n.wipe(node(), true)
				wiped++
			} else {
				n.restart(node())
			}
		default:
			id := node()
			if applied := n.nodes[id].appliedIndex(); applied > 2 {
				_ = n.nodes[id].storage.Compact(applied - 1)
			}
		}
	}
	return proposed, wiped
}
