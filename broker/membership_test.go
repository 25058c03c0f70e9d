package broker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/storage"
)

// memberCluster is a 3-node test cluster with an explicit cluster id (a
// cluster whose membership changes needs one: its files differ) and a
// fourth node's config that lists all four and joins.
func memberCluster(t *testing.T) ([]config.Node, config.Node) {
	cfgs := testCluster(t, 4)
	four := cfgs[3].Cluster
	four.ClusterID = "membership-test"
	three := four
	three.Addresses = four.Addresses[:3]
	for i := range cfgs {
		cfgs[i].Cluster = three
	}
	extra := cfgs[3]
	extra.Cluster = four
	extra.Join = true
	return cfgs[:3], extra
}

// members lists the members through the leader: id -> role and lag.
func members(t *testing.T, c *rawClient) map[int]string {
	t.Helper()
	got := c.do(`{"type":"member","method":"GET"}`)
	list, ok := got["members"].([]any)
	if got["success"] != true || !ok {
		t.Fatalf("member GET: %v", got)
	}
	out := map[int]string{}
	for _, m := range list {
		m := m.(map[string]any)
		out[int(m["id"].(float64))] = fmt.Sprintf("%s lag=%v", m["role"], m["lag"])
	}
	return out
}

// stopWith waits for a broker that stops by itself and returns its error.
func (r *running) stopWith(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.cancel = nil
		return err
	case <-time.After(within):
		t.Fatalf("broker did not stop by itself within %v", within)
		return nil
	}
}

// TestMembershipAddRemove: a fourth node joins empty, is added as a
// learner, catches up and is promoted; an original member is removed and
// stops; then one member of the new majority is lost, and every message is
// still there. The removed node's data may not come back.
func TestMembershipAddRemove(t *testing.T) {
	cfgs, extra := memberCluster(t)
	nodes := map[int]*running{}
	clients := map[int]*rawClient{}
	for i, cfg := range cfgs {
		nodes[i] = startBroker(t, cfg)
		clients[i] = dialRaw(t, cfg.Self().ClientAddr())
	}
	lead := leaderOf(t, clients)
	c := clients[lead]
	if got := c.do(`{"type":"topic","method":"PUT","topic":"q"}`); got["success"] != true {
		t.Fatalf("create: %v", got)
	}
	const msgs = 30
	for i := range msgs {
		if got := c.do(fmt.Sprintf(`{"type":"message","method":"PUT","topic":"q","message":"m%d"}`, i)); got["success"] != true {
			t.Fatalf("put: %v", got)
		}
	}
	// A follower does not serve member requests.
	if got := clients[(lead+1)%3].do(`{"type":"member","method":"GET"}`); got["error"] != "not_leader" {
		t.Fatalf("member GET on a follower: %v", got)
	}
	nodes[3] = startBroker(t, extra)
	clients[3] = dialRaw(t, extra.Self().ClientAddr())
	if st := clients[3].status(); st.Role != "Follower" || st.Term != 0 {
		t.Fatalf("joining node: %+v, want a follower at term 0", st)
	}
	a := extra.Self()
	add := fmt.Sprintf(`{"type":"member","method":"PUT","id":3,"role":"learner","ip":%q,"port":%d,"internal_port":%d}`, a.IP, a.Port, a.InternalPort)
	// Promoting before adding makes no sense.
	if got := c.do(`{"type":"member","method":"PUT","id":3,"role":"voter"}`); got["error"] != "member_refused" {
		t.Fatalf("promote a stranger: %v", got)
	}
	if got := c.do(add); got["success"] != true {
		t.Fatalf("add learner: %v", got)
	}
	if got := c.do(add); got["error"] != "member_refused" {
		t.Fatalf("add it twice: %v", got)
	}
	testwait.For(t, 10*time.Second, "learner 3 caught up", func() bool { return members(t, c)[3] == "learner lag=0" })
	// Refused (member_refused) while it still reports recovering, as a
	// node that joined empty does until its commit index has caught up
	// too (decision 25): retry, as `raftmq member add` does.
	testwait.Err(t, 10*time.Second, "the promotion of learner 3", func() error {
		if got := c.do(`{"type":"member","method":"PUT","id":3,"role":"voter"}`); got["success"] != true {
			return fmt.Errorf("promote: %v", got)
		}
		return nil
	})
	testwait.For(t, 5*time.Second, "4 voters", func() bool {
		got := members(t, c)
		return len(got) == 4 && got[3] == "voter lag=0"
	})
	// Remove an original follower: it stops by itself.
	gone := (lead + 1) % 3
	if got := c.do(fmt.Sprintf(`{"type":"member","method":"DELETE","id":%d}`, gone)); got["success"] != true {
		t.Fatalf("remove %d: %v", gone, got)
	}
	if err := nodes[gone].stopWith(t, 10*time.Second); !errors.Is(err, ErrRemoved) {
		t.Fatalf("removed node stopped with %v, want ErrRemoved", err)
	}
	delete(nodes, gone)
	delete(clients, gone)
	if got := members(t, c); len(got) != 3 || got[gone] != "" {
		t.Fatalf("members after remove: %v", got)
	}
	// Its data may not come back under its id.
	if _, err := New(cfgs[gone], zerolog.Nop()); !errors.Is(err, ErrRemoved) {
		t.Fatalf("New on the removed node's data: %v, want ErrRemoved", err)
	}
	// A removed id cannot be added again.
	old := cfgs[gone].Self()
	if got := c.do(fmt.Sprintf(`{"type":"member","method":"PUT","id":%d,"role":"learner","ip":%q,"port":%d,"internal_port":%d}`, gone, old.IP, old.Port, old.InternalPort)); got["error"] != "member_refused" {
		t.Fatalf("re-add a removed id: %v", got)
	}
	// Lose one member of the new majority (not the leader): 2 of 3 remain.
	other := 3 - lead - gone
	nodes[other].stop(t)
	delete(clients, other)
	for i := range msgs {
		if got := c.do(`{"type":"message","method":"GET","topic":"q"}`); got["message"] != fmt.Sprintf("m%d", i) {
			t.Fatalf("pop %d after the changes: %v", i, got)
		}
	}
}

// TestMembershipRemoveLeader: removing the leader commits, the leader
// stops, and the others elect a leader that holds every message.
func TestMembershipRemoveLeader(t *testing.T) {
	cfgs, _ := memberCluster(t)
	nodes := map[int]*running{}
	clients := map[int]*rawClient{}
	for i, cfg := range cfgs {
		nodes[i] = startBroker(t, cfg)
		clients[i] = dialRaw(t, cfg.Self().ClientAddr())
	}
	lead := leaderOf(t, clients)
	c := clients[lead]
	if got := c.do(`{"type":"topic","method":"PUT","topic":"q"}`); got["success"] != true {
		t.Fatalf("create: %v", got)
	}
	if got := c.do(`{"type":"message","method":"PUT","topic":"q","message":"kept"}`); got["success"] != true {
		t.Fatalf("put: %v", got)
	}
	if got := c.do(fmt.Sprintf(`{"type":"member","method":"DELETE","id":%d}`, lead)); got["success"] != true {
		t.Fatalf("remove the leader: %v", got)
	}
	if err := nodes[lead].stopWith(t, 10*time.Second); !errors.Is(err, ErrRemoved) {
		t.Fatalf("removed leader stopped with %v, want ErrRemoved", err)
	}
	delete(clients, lead)
	newLead := leaderOf(t, clients)
	if got := members(t, clients[newLead]); len(got) != 2 || got[lead] != "" {
		t.Fatalf("members: %v", got)
	}
	if got := clients[newLead].do(`{"type":"message","method":"GET","topic":"q"}`); got["message"] != "kept" {
		t.Fatalf("pop on the new leader: %v", got)
	}
	// A client whose answer was lost with the removed leader retries at the
	// new one: the removal is done, so it hears success...
	if got := clients[newLead].do(fmt.Sprintf(`{"type":"member","method":"DELETE","id":%d}`, lead)); got["success"] != true {
		t.Fatalf("retried removal of the old leader: %v, want success (it is removed)", got)
	}
	// ...while an id that never was a member is still refused.
	if got := clients[newLead].do(`{"type":"member","method":"DELETE","id":9}`); got["error"] != "member_refused" {
		t.Fatalf("remove a stranger: %v", got)
	}
}

// startCompactingMembers starts memberCluster's three members with a log
// compacted every 300 entries; it returns them, the fourth node's config
// (the same settings, not started) and a client of the leader.
func startCompactingMembers(t *testing.T) (map[int]*running, config.Node, *rawClient) {
	t.Helper()
	cfgs, extra := memberCluster(t)
	edit := func(c *config.Node) {
		c.SnapshotEntries, c.TrailingEntries, c.SnapshotChunkBytes = 300, 300, 64<<10
	}
	nodes := map[int]*running{}
	clients := map[int]*rawClient{}
	for i := range cfgs {
		edit(&cfgs[i])
		nodes[i] = startBroker(t, cfgs[i])
		clients[i] = dialRaw(t, cfgs[i].Self().ClientAddr())
	}
	edit(&extra)
	// A leader refuses membership changes until an entry of its term is
	// committed: return one that has committed a write.
	var lead *rawClient
	attempt := 0
	testwait.For(t, 20*time.Second, "a leader that has committed a write in its term", func() bool {
		attempt++
		lead = clients[leaderOf(t, clients)]
		return lead.do(fmt.Sprintf(`{"type":"topic","method":"PUT","topic":"ready%d"}`, attempt))["success"] == true
	})
	return nodes, extra, lead
}

// memberChange sends a member request to the leader c, again while the
// leader refuses it because an entry of its term or an earlier change is
// not committed yet (a leader that just took over under load), as
// `raftmq member` does.
func memberChange(t *testing.T, c *rawClient, req string) map[string]any {
	t.Helper()
	var got map[string]any
	testwait.For(t, 20*time.Second, "the leader to take "+req, func() bool {
		got = c.do(req)
		detail, _ := got["detail"].(string)
		return got["error"] != "member_refused" || !strings.Contains(detail, "not committed yet")
	})
	return got
}

// fillPastCompaction puts 1500 messages of 2 KB into topic q: five
// compactions' worth of log.
func fillPastCompaction(t *testing.T, c *rawClient) {
	t.Helper()
	c.do(`{"type":"topic","method":"PUT","topic":"q"}`)
	pad := strings.Repeat("x", 2000)
	for i := range 1500 {
		if got := c.do(fmt.Sprintf(`{"type":"message","method":"PUT","topic":"q","message":"m%d%s"}`, i, pad)); got["success"] != true {
			t.Fatalf("put: %v", got)
		}
	}
}

// TestMembershipLearnerCatchesUpBySnapshot: a learner added after the log
// was compacted gets a snapshot, then the rest of the log, and is promoted.
func TestMembershipLearnerCatchesUpBySnapshot(t *testing.T) {
	nodes, extra, c := startCompactingMembers(t)
	fillPastCompaction(t, c)
	testwait.For(t, 10*time.Second, "the leader to compact", func() bool { return c.status().FirstIndex > 50 })
	nodes[3] = startBroker(t, extra)
	a := extra.Self()
	if got := memberChange(t, c, fmt.Sprintf(`{"type":"member","method":"PUT","id":3,"role":"learner","ip":%q,"port":%d,"internal_port":%d}`, a.IP, a.Port, a.InternalPort)); got["success"] != true {
		t.Fatalf("add learner: %v", got)
	}
	testwait.For(t, 15*time.Second, "learner 3 caught up", func() bool { return members(t, c)[3] == "learner lag=0" })
	if nodes[3].b.stats.snapshotsInstalled.Load() == 0 {
		t.Fatal("the learner caught up without a snapshot")
	}
	// A removed learner never campaigns: the members tell it at once.
	if got := memberChange(t, c, `{"type":"member","method":"DELETE","id":3}`); got["success"] != true {
		t.Fatalf("remove the learner: %v", got)
	}
	if err := nodes[3].stopWith(t, 10*time.Second); !errors.Is(err, ErrRemoved) {
		t.Fatalf("removed learner stopped with %v, want ErrRemoved", err)
	}
}

// TestMembershipFromSnapshot: a node that catches up by snapshot, after the
// log was compacted past the changes that added member 4 and removed
// member 5, learns member 4's addresses and member 5's removal from the
// snapshot (its cluster file lists neither), and keeps them across a
// restart.
func TestMembershipFromSnapshot(t *testing.T) {
	more := testCluster(t, 2) // addresses for members 4 and 5 (never started)
	nodes, extra, c := startCompactingMembers(t)
	addLearner := func(id int, a config.Address) {
		t.Helper()
		if got := memberChange(t, c, fmt.Sprintf(`{"type":"member","method":"PUT","id":%d,"role":"learner","ip":%q,"port":%d,"internal_port":%d}`, id, a.IP, a.Port, a.InternalPort)); got["success"] != true {
			t.Fatalf("add learner %d: %v", id, got)
		}
	}
	four, five := more[0].Cluster.Addresses[0], more[0].Cluster.Addresses[1]
	addLearner(4, four)
	addLearner(5, five)
	if got := memberChange(t, c, `{"type":"member","method":"DELETE","id":5}`); got["success"] != true {
		t.Fatalf("remove 5: %v", got)
	}
	fillPastCompaction(t, c)
	testwait.For(t, 10*time.Second, "the leader to compact past the changes", func() bool { return c.status().FirstIndex > 50 })
	nodes[3] = startBroker(t, extra)
	addLearner(3, extra.Self())
	testwait.For(t, 15*time.Second, "learner 3 caught up", func() bool { return members(t, c)[3] == "learner lag=0" })
	if nodes[3].b.stats.snapshotsInstalled.Load() == 0 {
		t.Fatal("the learner caught up without a snapshot")
	}
	check := func(what string, m storage.Members) {
		t.Helper()
		got, ok := m.Addrs[raftID(4)]
		if want := (storage.MemberAddr{IP: four.IP, Port: four.Port, InternalPort: four.InternalPort}); !ok || got != want {
			t.Errorf("%s: member 4's addresses %+v (known %v), want %+v", what, got, ok, want)
		}
		if !slices.Contains(m.Removed, raftID(5)) {
			t.Errorf("%s: removed ids %v, want member 5 among them", what, m.Removed)
		}
	}
	check("after the install", nodes[3].b.raft.Members())
	nodes[3].stop(t)

	// At start, the transport's peers come from the recorded members: it
	// connects to member 4 and not to member 5.
	reopen := func() *Broker {
		t.Helper()
		b, err := New(extra, zerolog.Nop())
		if err != nil {
			t.Fatalf("restart node 3: %v", err)
		}
		return b
	}
	b := reopen()
	if a, ok := b.addrs[raftID(4)]; !ok || a.PeerAddr() != four.PeerAddr() {
		t.Errorf("restarted node 3 has no address for member 4: %v", b.addrs)
	}
	if _, ok := b.addrs[raftID(5)]; ok {
		t.Errorf("restarted node 3 has an address for the removed member 5: %v", b.addrs)
	}
	b.closeStores()
	// (A raft.db that lost its members record cannot get it back from a
	// kept snapshot file any more: none is kept, decision 26. An install
	// records the log's base and the members in one write.)
}
