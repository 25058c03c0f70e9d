package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testwait"
)

// leaderWithin bounds leaderOf's wait.
const leaderWithin = 20 * time.Second

// leaderOf polls the nodes' status until one reports Leader and every
// other live node follows it in the same term. The bound is for a run
// under -race beside other packages, where nodes restarted on a deep
// queue first verify their files (decision 9); it is not a speed check.
func leaderOf(t testing.TB, clients map[int]*rawClient) int {
	t.Helper()
	leader := -1
	testwait.For(t, leaderWithin, "one leader followed by all", func() bool {
		leader = -1
		var term uint64
		for id, c := range clients {
			st := c.status()
			if st.Role == "Leader" {
				leader, term = id, st.Term
			}
		}
		if leader < 0 {
			return false
		}
		for _, c := range clients {
			st := c.status()
			if st.Term != term || st.LeaderID == nil || *st.LeaderID != leader {
				return false
			}
		}
		return true
	})
	return leader
}

// TestThreeNodeReplication: a follower refuses a write: exactly
// {"success":false} to a course request, not_leader and a hint to one that
// names its client; after the leader stops, a new leader serves everything
// acknowledged before.
func TestThreeNodeReplication(t *testing.T) {
	cfgs := testCluster(t, 3)
	nodes := map[int]*running{}
	clients := map[int]*rawClient{}
	for i, cfg := range cfgs {
		nodes[i] = startBroker(t, cfg)
		clients[i] = dialRaw(t, cfg.Self().ClientAddr())
	}
	lead := leaderOf(t, clients)
	follower := (lead + 1) % 3
	if got := clients[follower].raw([]byte(`{"type":"topic","method":"PUT","topic":"q"}`)); string(got) != `{"success":false}` {
		t.Fatalf("follower answered a course request %s, want exactly {\"success\":false}", got)
	}
	got := clients[follower].do(`{"type":"topic","method":"PUT","topic":"q","client_id":"c","seq":1}`)
	if got["error"] != "not_leader" || got["leader"] != cfgs[lead].Self().ClientAddr() {
		t.Fatalf("follower answered %v, want not_leader with hint %s", got, cfgs[lead].Self().ClientAddr())
	}
	if got := clients[lead].do(`{"type":"topic","method":"PUT","topic":"q"}`); got["success"] != true {
		t.Fatalf("create on leader: %v", got)
	}
	for i := 0; i < 5; i++ {
		if got := clients[lead].do(fmt.Sprintf(`{"type":"message","method":"PUT","topic":"q","message":"m%d"}`, i)); got["success"] != true {
			t.Fatalf("put: %v", got)
		}
	}
	if got := clients[lead].do(`{"type":"message","method":"GET","topic":"q"}`); got["message"] != "m0" {
		t.Fatalf("pop: %v", got)
	}
	nodes[lead].stop(t)
	delete(clients, lead)
	newLead := leaderOf(t, clients)
	if newLead == lead {
		t.Fatalf("stopped node %d still leader", lead)
	}
	for i := 1; i < 5; i++ {
		if got := clients[newLead].do(`{"type":"message","method":"GET","topic":"q"}`); got["message"] != fmt.Sprintf("m%d", i) {
			t.Fatalf("pop on new leader: %v, want m%d", got, i)
		}
	}
	if got := clients[newLead].do(`{"type":"topic","method":"GET"}`); fmt.Sprint(got["topics"]) != "[q]" {
		t.Fatalf("topics on new leader: %v", got)
	}
}
