package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/internal/coursetest"
	"github.com/raftmq/raftmq/internal/proccluster"
	"github.com/raftmq/raftmq/internal/testwait"
)

func clusterClient(t *testing.T, c *proccluster.Cluster) *client.Client {
	t.Helper()
	cl, err := c.Client(client.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func putN(t *testing.T, cl *client.Client, topic string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if ok, err := cl.Put(context.Background(), topic, fmt.Sprintf("m%d", i)); err != nil || !ok {
			t.Fatalf("put m%d: %v %v", i, ok, err)
		}
	}
}

// drainExpect pops until empty and checks the messages are exactly
// m<from>..m<to-1> in order.
func drainExpect(t *testing.T, cl *client.Client, topic string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		m, ok, err := cl.Pop(context.Background(), topic)
		if err != nil || !ok || m != fmt.Sprintf("m%d", i) {
			t.Fatalf("pop: got %q %v %v, want m%d", m, ok, err, i)
		}
	}
	if m, ok, err := cl.Pop(context.Background(), topic); err != nil || ok {
		t.Fatalf("queue should be empty: %q %v %v", m, ok, err)
	}
}

// TestFiveNodesOneLeaderPerTerm: five nodes elect one leader within 2 s of
// starting, and no two nodes ever claim leadership of one term.
func TestFiveNodesOneLeaderPerTerm(t *testing.T) {
	c, err := proccluster.NewCluster(bin, t.TempDir(), proccluster.Options{Nodes: 5, Args: fastArgs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WaitLeader(2 * time.Second); err != nil {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
	leaders := map[uint64]int{} // term → leader id
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		for i := range c.Addrs {
			st, err := c.Status(i, 200*time.Millisecond)
			if err != nil || st.Role != "Leader" {
				continue
			}
			if prev, ok := leaders[st.Term]; ok && prev != st.ID {
				t.Fatalf("term %d has two leaders: %d and %d", st.Term, prev, st.ID)
			}
			leaders[st.Term] = st.ID
		}
	}
	if len(leaders) == 0 {
		t.Fatal("no leader observed")
	}
}

// TestLeaderKillFailover: data written through one leader is served by the
// next one after the first is SIGKILLed.
func TestLeaderKillFailover(t *testing.T) {
	c := newCluster(t, 5)
	cl := clusterClient(t, c)
	ctx := context.Background()
	if ok, err := cl.CreateTopic(ctx, "q"); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	putN(t, cl, "q", 0, 10)
	old, _, err := c.WaitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := c.Kill(old); err != nil {
		t.Fatal(err)
	}
	lead, _, err := c.WaitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("new leader %d after %v", lead, time.Since(killed))
	if lead == old {
		t.Fatalf("killed node %d still reported as leader", old)
	}
	topics, err := cl.ListTopics(ctx)
	if err != nil || len(topics) != 1 || topics[0] != "q" {
		t.Fatalf("topics on new leader: %v %v", topics, err)
	}
	drainExpect(t, cl, "q", 0, 10)
}

// TestAllKilledAtOnce: SIGKILL of every broker together loses nothing
// acknowledged and duplicates nothing.
func TestAllKilledAtOnce(t *testing.T) {
	c := newCluster(t, 3)
	cl := clusterClient(t, c)
	ctx := context.Background()
	if ok, err := cl.CreateTopic(ctx, "q"); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	putN(t, cl, "q", 0, 40)
	for i := 0; i < 10; i++ {
		if m, ok, err := cl.Pop(ctx, "q"); err != nil || !ok || m != fmt.Sprintf("m%d", i) {
			t.Fatalf("pop: %q %v %v", m, ok, err)
		}
	}
	terms := map[int]uint64{}
	for i := range c.Addrs {
		st, err := c.Status(i, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		terms[i] = st.Term
	}
	if err := c.KillAll(); err != nil {
		t.Fatal(err)
	}
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WaitLeader(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range c.Addrs {
		st, err := c.Status(i, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if st.Term < terms[i] {
			t.Errorf("node %d term went back from %d to %d across a restart", i, terms[i], st.Term)
		}
	}
	drainExpect(t, cl, "q", 10, 40)
}

// TestFollowerCatchUp: a follower that was down while 50 messages were
// written catches up after restart, and then can win an election and serve
// all 50 itself.
func TestFollowerCatchUp(t *testing.T) {
	c := newCluster(t, 5)
	cl := clusterClient(t, c)
	ctx := context.Background()
	lead, _, err := c.WaitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f := (lead + 1) % 5
	if err := c.Kill(f); err != nil {
		t.Fatal(err)
	}
	if ok, err := cl.CreateTopic(ctx, "q"); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	putN(t, cl, "q", 0, 50)
	lst, err := c.Status(lead, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(f); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the restarted follower to apply the leader's commit index", func() bool {
		st, err := c.Status(f, 200*time.Millisecond)
		return err == nil && st.Applied >= lst.Commit
	})
	// Make f the leader: keep exactly a majority running and pause whoever
	// else wins, until f wins. f can only win if its log is up to date.
	paused := map[int]bool{}
	for attempt := 0; ; attempt++ {
		if attempt == 20 {
			t.Fatal("follower never won an election in 20 tries")
		}
		l, _, err := c.WaitLeader(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if l == f {
			break
		}
		if err := c.Pause(l); err != nil {
			t.Fatal(err)
		}
		paused[l] = true
		if len(paused) > 2 { // 5 nodes: keep 3 running
			for p := range paused {
				if p != l {
					if err := c.Resume(p); err != nil {
						t.Fatal(err)
					}
					delete(paused, p)
					break
				}
			}
		}
		// Wait until a leader other than the paused one is elected.
		testwait.For(t, 10*time.Second, "a new leader", func() bool {
			nl, _, err := c.WaitLeader(300 * time.Millisecond)
			return err == nil && nl != l
		})
	}
	for p := range paused {
		if err := c.Resume(p); err != nil {
			t.Fatal(err)
		}
	}
	fc, err := client.New(client.Options{Servers: []string{c.Addrs[f].ClientAddr()}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	drainExpect(t, fc, "q", 0, 50)
}

// TestPausedLeaderStepsDown: SIGSTOP of the leader for longer than the
// election timeout, then SIGCONT: the old leader steps down and nothing
// acknowledged is lost.
func TestPausedLeaderStepsDown(t *testing.T) {
	c := newCluster(t, 3)
	cl := clusterClient(t, c)
	ctx := context.Background()
	if ok, err := cl.CreateTopic(ctx, "q"); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	putN(t, cl, "q", 0, 10)
	old, oldTerm, err := c.WaitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(old); err != nil {
		t.Fatal(err)
	}
	// The rest elect a new leader while the old one is frozen.
	testwait.For(t, 10*time.Second, "a leader among the others", func() bool {
		for i := range c.Addrs {
			if i == old {
				continue
			}
			st, err := c.Status(i, 200*time.Millisecond)
			if err == nil && st.Role == "Leader" && st.Term > oldTerm {
				return true
			}
		}
		return false
	})
	putN(t, cl, "q", 10, 20)
	if err := c.Resume(old); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "the old leader to step down", func() bool {
		st, err := c.Status(old, 200*time.Millisecond)
		return err == nil && st.Role == "Follower" && st.Term > oldTerm
	})
	drainExpect(t, cl, "q", 0, 20)
}

// TestRetrySameSeqAppliedOnce sends one put with the same client_id and seq
// to the leader, then again to the next leader after the first is killed:
// the message is queued once, and both answers are success.
func TestRetrySameSeqAppliedOnce(t *testing.T) {
	c := newCluster(t, 3)
	cl := clusterClient(t, c)
	ctx := context.Background()
	if ok, err := cl.CreateTopic(ctx, "q"); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	req := `{"type":"message","method":"PUT","topic":"q","message":"once","client_id":"retry-test","seq":7}`
	lead, _, err := c.WaitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if got := rawDo(t, c.Addrs[lead].ClientAddr(), req); got["success"] != true || len(got) != 1 {
			t.Fatalf("put %d: %v", i, got)
		}
	}
	if err := c.Kill(lead); err != nil {
		t.Fatal(err)
	}
	lead, _, err = c.WaitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := rawDo(t, c.Addrs[lead].ClientAddr(), req); got["success"] != true || len(got) != 1 {
		t.Fatalf("retry on new leader: %v", got)
	}
	if m, ok, err := cl.Pop(ctx, "q"); err != nil || !ok || m != "once" {
		t.Fatalf("pop: %q %v %v", m, ok, err)
	}
	if m, ok, err := cl.Pop(ctx, "q"); err != nil || ok {
		t.Fatalf("message applied twice: second pop %q %v %v", m, ok, err)
	}
}

// rawDo sends one JSON request on a REQ socket and decodes the reply.
func rawDo(t *testing.T, addr, req string) map[string]any {
	t.Helper()
	reply, err := coursetest.Ask(addr, req, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(reply, &m); err != nil {
		t.Fatalf("reply %q: %v", reply, err)
	}
	return m
}

// TestGracefulLeaderStopTransfers: SIGTERM on the leader exits 0 and hands
// leadership over: the next leader is elected in the very next term (a
// TimeoutNow campaign), not after a timed-out election round.
func TestGracefulLeaderStopTransfers(t *testing.T) {
	c := newCluster(t, 5, "--election-ticks", "50") // 0.5–1 s: a timeout election would be obvious
	cl := clusterClient(t, c)
	if ok, err := cl.CreateTopic(context.Background(), "q"); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	old, term, err := c.WaitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	took, err := c.Stop(old, 6*time.Second)
	if err != nil {
		t.Fatalf("graceful stop of leader %d: %v", old, err)
	}
	lead, newTerm, err := c.WaitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %d stopped in %v; new leader %d in term %d", old, took, lead, newTerm)
	if newTerm != term+1 {
		t.Fatalf("new leader's term %d, want %d: leadership was not transferred", newTerm, term+1)
	}
	logs, err := os.ReadFile(c.LogPath(old))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "leadership transferred") {
		t.Fatalf("old leader's log does not record the transfer")
	}
}
