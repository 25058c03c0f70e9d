package broker

import (
	"flag"
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// memChaosSeed picks TestChaosOverMemNetwork's faults and schedule; a
// failure names it, and `-memchaos.seed=N` reruns it.
var memChaosSeed = flag.Int64("memchaos.seed", 2712, "seed of TestChaosOverMemNetwork")

// exactClient sends requests with one client_id and increasing seqs to
// whichever broker leads, and retries a request with the same seq until it
// gets a definite answer: the session makes a retry exact, so a request
// whose first answer was lost (timeout, leader change) counts once.
type exactClient struct {
	t       *testing.T
	clients map[int]*rawClient
	id      string
	seq     int
	guess   int
}

// definiteWithin bounds the retries of one request; it is not a speed
// check, only the point where a stuck cluster fails the test.
const definiteWithin = 30 * time.Second

func (c *exactClient) do(seed int64, format string, args ...any) map[string]any {
	c.t.Helper()
	c.seq++
	req := fmt.Sprintf(`{"client_id":%q,"seq":%d,`, c.id, c.seq) + fmt.Sprintf(format, args...)[1:]
	deadline := time.Now().Add(definiteWithin)
	for tries := 0; ; tries++ {
		r := c.clients[c.guess].do(req)
		code, refused := r["error"].(string)
		if !refused {
			return r
		}
		switch code {
		case "not_leader", "no_leader", "timeout", "overloaded":
		default:
			c.t.Fatalf("seed %d: %s answered %v", seed, req, r)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("seed %d: no definite answer to %s within %v (%d tries); last %v", seed, req, definiteWithin, tries+1, r)
		}
		c.guess = (c.guess + 1) % len(c.clients)
		if hint, ok := r["leader"].(string); ok {
			for i, cl := range c.clients {
				if cl.addr == hint {
					c.guess = i
				}
			}
		}
		if code == "no_leader" {
			time.Sleep(20 * time.Millisecond) // pacing a retry, not waiting for a condition
		}
	}
}

// TestChaosOverMemNetwork runs three brokers over the in-memory network
// with seeded drops and delays, and a seeded schedule of faults (a node cut
// off both ways, a node that can hear but not speak, healing) while one
// producer puts and one consumer pops, each retrying until a definite
// answer. After a last heal and a drain, the messages popped are exactly
// the ones acknowledged, each once, in the order they were put: nothing
// acknowledged lost, nothing duplicated or invented, FIFO kept across
// every leader change.
func TestChaosOverMemNetwork(t *testing.T) {
	seed := *memChaosSeed
	rng := rand.New(rand.NewSource(seed))
	nw, clients, all := startFaultyMemCluster(t, seed, 5, 3*time.Millisecond)
	firstTerm := clients[leaderOf(t, clients)].status().Term
	producer := &exactClient{t: t, clients: clients, id: "producer"}
	consumer := &exactClient{t: t, clients: clients, id: "consumer"}
	if r := producer.do(seed, `{"type":"topic","method":"PUT","topic":"q"}`); r["success"] != true {
		t.Fatalf("seed %d: create topic: %v", seed, r)
	}

	var acked, popped []string
	pop := func() bool {
		r := consumer.do(seed, `{"type":"message","method":"GET","topic":"q"}`)
		if r["success"] != true {
			return false // empty
		}
		popped = append(popped, fmt.Sprint(r["message"]))
		return true
	}
	// A fault lasts until the nodes on the majority side agree on a leader
	// (a new one, if it cut the leader off): the ops in between are the
	// ones a cut-off leader could wrongly acknowledge.
	var victim uint64
	endFault := func() {
		if victim != 0 {
			majority := map[int]*rawClient{}
			for i, c := range clients {
				if raftID(i) != victim {
					majority[i] = c
				}
			}
			leaderOf(t, majority)
		}
		nw.heal()
		victim = 0
	}
	const ops = 80
	for op := 0; op < ops; op++ {
		switch x := rng.Intn(100); {
		case x < 8:
			endFault()
			victim = all[rng.Intn(len(all))]
			nw.isolate(victim, all)
			t.Logf("op %d: node %d cut off", op, nodeIndex(victim))
		case x < 12:
			endFault()
			victim = all[rng.Intn(len(all))]
			nw.mute(victim, all)
			t.Logf("op %d: node %d hears but cannot speak", op, nodeIndex(victim))
		case x < 20:
			endFault()
			t.Logf("op %d: healed", op)
		case x < 65:
			msg := fmt.Sprintf("m%d", op)
			r := producer.do(seed, `{"type":"message","method":"PUT","topic":"q","message":%q}`, msg)
			if r["success"] != true {
				t.Fatalf("seed %d: put %s answered %v", seed, msg, r)
			}
			acked = append(acked, msg)
		default:
			pop()
		}
	}
	endFault()
	for pop() {
	}
	if fmt.Sprint(popped) != fmt.Sprint(acked) {
		t.Fatalf("seed %d: popped %q, want exactly the acknowledged %q", seed, popped, acked)
	}
	if len(acked) == 0 {
		t.Fatalf("seed %d: the schedule put nothing", seed)
	}
	if term := clients[leaderOf(t, clients)].status().Term; term == firstTerm {
		t.Fatalf("seed %d: the leader of term %d lasted the whole schedule; the faults tested nothing", seed, term)
	}
	t.Logf("seed %d: %d puts acknowledged and popped; network delivered %d frames, dropped %d, refused %d",
		seed, len(acked), nw.delivered.Load(), nw.dropped.Load(), nw.refused.Load())
}
