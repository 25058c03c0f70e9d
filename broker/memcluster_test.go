package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/testwait"
)

// startFaultyMemCluster starts three brokers (1 s request timeouts) over a
// new in-memory network whose links drop dropPct percent of the frames and
// delay each by up to maxDelay, seeded by seed. It returns the network, a
// client per broker and the three raft ids.
func startFaultyMemCluster(t *testing.T, seed int64, dropPct int, maxDelay time.Duration) (*memNetwork, map[int]*rawClient, []uint64) {
	t.Helper()
	nw := newMemNetwork("twins", seed)
	nw.setFaults(dropPct, 0, maxDelay)
	t.Logf("memNetwork seed %d", seed)
	cfgs := testCluster(t, 3)
	for i := range cfgs {
		cfgs[i].RequestTimeout = time.Second
	}
	_, clients := startMemCluster(t, nw, cfgs)
	return nw, clients, []uint64{raftID(0), raftID(1), raftID(2)}
}

// startMemCluster starts the brokers of cfgs with their peers connected by
// nw instead of ZeroMQ (clients still reach them over ZeroMQ), and returns
// a status client for each.
func startMemCluster(t *testing.T, nw *memNetwork, cfgs []config.Node) (map[int]*running, map[int]*rawClient) {
	t.Helper()
	nodes, clients := map[int]*running{}, map[int]*rawClient{}
	for i, cfg := range cfgs {
		nodes[i] = startBrokerWith(t, cfg, func(b *Broker) { b.peerTransport = nw.transportFor(b.self) })
		clients[i] = dialRaw(t, cfg.Self().ClientAddr())
	}
	return nodes, clients
}

// TestPartitionedLeaderLosesNothingAcknowledged runs three brokers over
// the in-memory network with seeded drops and delays on every link. It
// cuts the leader off: the majority elects another leader and takes
// writes; the cut-off leader answers nothing with success (its write
// cannot commit) and, once CheckQuorum deposes it, refuses writes at once.
// After healing, the queue holds exactly the acknowledged messages, in
// order: none lost, and not the minority's.
func TestPartitionedLeaderLosesNothingAcknowledged(t *testing.T) {
	const seed = 8
	nw, clients, all := startFaultyMemCluster(t, seed, 2, 2*time.Millisecond)

	lead := leaderOf(t, clients)
	var acked []string
	put := func(node int, msg string) map[string]any {
		return clients[node].do(fmt.Sprintf(`{"type":"message","method":"PUT","topic":"q","message":%q}`, msg))
	}
	if got := clients[lead].do(`{"type":"topic","method":"PUT","topic":"q"}`); got["success"] != true {
		t.Fatalf("create topic on leader %d: %v", lead, got)
	}
	for i := 0; i < 5; i++ {
		msg := fmt.Sprintf("before-%d", i)
		if got := put(lead, msg); got["success"] != true {
			t.Fatalf("put %s on leader %d: %v", msg, lead, got)
		}
		acked = append(acked, msg)
	}

	nw.isolate(raftID(lead), all)
	// Sent at once, most likely while the cut-off node still thinks it
	// leads: it may time out or be refused, but must not succeed.
	if got := put(lead, "minority"); got["success"] == true {
		t.Fatalf("cut-off leader %d acknowledged a write it cannot commit: %v", lead, got)
	}
	testwait.For(t, leaderWithin, "the cut-off leader to step down", func() bool {
		return clients[lead].status().Role != "Leader"
	})
	late := clients[lead].do(`{"type":"message","method":"PUT","topic":"q","message":"minority-late","client_id":"m","seq":1}`)
	if got := late; got["error"] != "no_leader" && got["error"] != "not_leader" {
		t.Fatalf("deposed node %d answered a write %v, want no_leader or not_leader", lead, got)
	}

	majority := map[int]*rawClient{}
	for i, c := range clients {
		if i != lead {
			majority[i] = c
		}
	}
	newLead := leaderOf(t, majority)
	for i := 0; i < 3; i++ {
		msg := fmt.Sprintf("after-%d", i)
		if got := put(newLead, msg); got["success"] != true {
			t.Fatalf("put %s on new leader %d: %v", msg, newLead, got)
		}
		acked = append(acked, msg)
	}

	nw.heal()
	final := leaderOf(t, clients)
	var got []string
	for {
		r := clients[final].do(`{"type":"message","method":"GET","topic":"q"}`)
		if r["success"] != true {
			break
		}
		got = append(got, fmt.Sprint(r["message"]))
	}
	if fmt.Sprint(got) != fmt.Sprint(acked) {
		t.Fatalf("seed %d: queue after healing holds %q, want exactly the acknowledged %q", seed, got, acked)
	}
	// The node that was cut off caught up with the same log.
	want := clients[final].status().Commit
	testwait.For(t, leaderWithin, "every node to apply the leader's commit index", func() bool {
		for _, c := range clients {
			if c.status().Applied < want {
				return false
			}
		}
		return true
	})
	if nw.delivered.Load() == 0 || nw.dropped.Load() == 0 {
		t.Fatalf("seed %d: network delivered %d frames and dropped %d; the faults did not run", seed, nw.delivered.Load(), nw.dropped.Load())
	}
	t.Logf("seed %d: %d frames delivered, %d dropped, %d refused", seed, nw.delivered.Load(), nw.dropped.Load(), nw.refused.Load())
}

// TestRestartedFollowerCatchesUpOverMemNetwork stops a follower, writes
// without it, starts it again from its data directory (its transport
// attaches to the network anew) and, once it has caught up, stops the old
// leader: the restarted node and the other follower elect a leader that
// gives back every acknowledged message, in order.
func TestRestartedFollowerCatchesUpOverMemNetwork(t *testing.T) {
	const seed = 28
	nw := newMemNetwork("twins", seed)
	nw.setFaults(2, 0, time.Millisecond)
	cfgs := testCluster(t, 3)
	nodes, clients := startMemCluster(t, nw, cfgs)
	lead := leaderOf(t, clients)
	f := (lead + 1) % 3
	var acked []string
	put := func(node int, msg string) {
		t.Helper()
		if got := clients[node].do(fmt.Sprintf(`{"type":"message","method":"PUT","topic":"q","message":%q}`, msg)); got["success"] != true {
			t.Fatalf("seed %d: put %s on node %d: %v", seed, msg, node, got)
		}
		acked = append(acked, msg)
	}
	if got := clients[lead].do(`{"type":"topic","method":"PUT","topic":"q"}`); got["success"] != true {
		t.Fatalf("create topic: %v", got)
	}
	put(lead, "before")
	nodes[f].stop(t)
	for i := 0; i < 5; i++ {
		put(lead, fmt.Sprintf("while-down-%d", i))
	}
	nodes[f] = startBrokerWith(t, cfgs[f], func(b *Broker) { b.peerTransport = nw.transportFor(b.self) })
	want := clients[lead].status().Commit
	testwait.For(t, leaderWithin, "the restarted follower to apply the leader's commit index", func() bool {
		return clients[f].status().Applied >= want
	})
	nodes[lead].stop(t)
	delete(clients, lead)
	newLead := leaderOf(t, clients)
	put(newLead, "after")
	var got []string
	for {
		r := clients[newLead].do(`{"type":"message","method":"GET","topic":"q"}`)
		if r["success"] != true {
			break
		}
		got = append(got, fmt.Sprint(r["message"]))
	}
	if fmt.Sprint(got) != fmt.Sprint(acked) {
		t.Fatalf("seed %d: new leader %d gives back %q, want %q", seed, newLead, got, acked)
	}
}
