package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/internal/proccluster"
)

// memberTestCluster starts 3 brokers whose cluster file names a cluster id
// (membership changes rewrite the file), and puts n messages on topic q.
func memberTestCluster(t *testing.T, n int) (*proccluster.Cluster, *client.Client) {
	t.Helper()
	c := startCluster(t, bin, proccluster.Options{Nodes: 3, Args: fastArgs, ClusterID: "e2e-membership"})
	if _, _, err := c.WaitLeader(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	cl, err := c.Client(client.Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	ctx := context.Background()
	if _, err := cl.CreateTopic(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if ok, err := cl.Put(ctx, "q", fmt.Sprintf("m%d", i)); !ok || err != nil {
			t.Fatalf("put %d: %v %v", i, ok, err)
		}
	}
	return c, cl
}

// raftmqCLI runs the binary and returns its stdout, stderr and exit code.
func raftmqCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

// memberList runs `raftmq member list --json`: id -> role.
func memberList(t *testing.T, c *proccluster.Cluster) map[int]string {
	t.Helper()
	out, errs, code := raftmqCLI(t, "member", "list", "--json", "--config", c.ConfigPath)
	if code != 0 {
		t.Fatalf("member list: exit %d\n%s%s", code, out, errs)
	}
	var got struct {
		Members []wire.Member `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("member list --json: %v\n%s", err, out)
	}
	roles := map[int]string{}
	for _, m := range got.Members {
		roles[m.ID] = m.Role
	}
	return roles
}

// joinNode adds a node to the cluster file and starts it with --join.
func joinNode(t *testing.T, c *proccluster.Cluster) int {
	t.Helper()
	id, err := c.AddNode("--join")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(id); err != nil {
		t.Fatal(err)
	}
	return id
}

func addMember(t *testing.T, c *proccluster.Cluster, id int) {
	t.Helper()
	out, errs, code := raftmqCLI(t, "member", "add", "--id", fmt.Sprint(id), "--config", c.ConfigPath, "--catch-up-timeout", "30s")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("node %d is a voter", id)) {
		t.Fatalf("member add --id %d: exit %d\n%s%s", id, code, out, errs)
	}
	if !strings.Contains(errs, "entries behind") {
		t.Errorf("member add showed no catch-up progress:\n%s", errs)
	}
}

func removeMember(t *testing.T, c *proccluster.Cluster, id int) {
	t.Helper()
	if out, errs, code := raftmqCLI(t, "member", "remove", "--id", fmt.Sprint(id), "--config", c.ConfigPath); code != 0 {
		t.Fatalf("member remove --id %d: exit %d\n%s%s", id, code, out, errs)
	}
}

// waitRemovedExit waits for a removed node's process to stop by itself,
// saying why.
func waitRemovedExit(t *testing.T, c *proccluster.Cluster, id int) {
	t.Helper()
	exitErr, err := c.WaitExit(id, 15*time.Second)
	if err != nil {
		t.Fatalf("removed node %d: %v", id, err)
	}
	if exitErr == nil {
		t.Errorf("removed node %d exited 0, want an error exit", id)
	}
	b, _ := os.ReadFile(c.LogPath(id))
	if !strings.Contains(string(b), "removed from the cluster") {
		t.Errorf("removed node %d's log does not say why it stopped:\n%s", id, tail(b, 2000))
	}
}

// popAll pops n messages and checks they are m0..m(n-1) in order.
func popAll(t *testing.T, cl *client.Client, n int) {
	t.Helper()
	for i := range n {
		msg, ok, err := cl.Pop(context.Background(), "q")
		if err != nil || !ok || msg != fmt.Sprintf("m%d", i) {
			t.Fatalf("pop %d: %q %v %v", i, msg, ok, err)
		}
	}
}

// leaderID asks the cluster's client for the leader's node id.
func leaderID(t *testing.T, c *proccluster.Cluster, live []int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, i := range live {
			if st, err := c.Status(i, 300*time.Millisecond); err == nil && st.Role == "Leader" {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no leader among %v", live)
	return -1
}

// TestMemberAddThenRemoveThenLoseOne: through the CLI, a fourth node joins
// and becomes a voter, an original member is removed (and stops), then one
// member of the new majority dies: every message is still there.
func TestMemberAddThenRemoveThenLoseOne(t *testing.T) {
	const msgs = 200
	c, cl := memberTestCluster(t, msgs)
	n3 := joinNode(t, c)
	addMember(t, c, n3)
	if got := memberList(t, c); len(got) != 4 || got[n3] != "voter" {
		t.Fatalf("members after add: %v", got)
	}
	lead := leaderID(t, c, []int{0, 1, 2})
	gone := (lead + 1) % 3
	removeMember(t, c, gone)
	waitRemovedExit(t, c, gone)
	if got := memberList(t, c); len(got) != 3 || got[gone] != "" {
		t.Fatalf("members after remove: %v", got)
	}
	// Lose one member of the new majority {lead, other, n3}: not the new
	// node, so that it must serve.
	other := 3 - lead - gone
	if err := c.Kill(other); err != nil {
		t.Fatal(err)
	}
	popAll(t, cl, msgs)
}

// TestMemberRemoveLeader: `member remove` of the current leader commits,
// the leader stops, and the rest go on with every message.
func TestMemberRemoveLeader(t *testing.T) {
	const msgs = 50
	c, cl := memberTestCluster(t, msgs)
	lead := leaderID(t, c, []int{0, 1, 2})
	removeMember(t, c, lead)
	waitRemovedExit(t, c, lead)
	var live []int
	for i := range 3 {
		if i != lead {
			live = append(live, i)
		}
	}
	leaderID(t, c, live)
	if got := memberList(t, c); len(got) != 2 || got[lead] != "" {
		t.Fatalf("members: %v", got)
	}
	popAll(t, cl, msgs)
}

// TestMemberReplaceDeadNode: a node dies with its data; it is removed and
// a new node (new id) is added; with one original down, a quorum needs the
// new node, which therefore holds the data.
func TestMemberReplaceDeadNode(t *testing.T) {
	const msgs = 100
	c, cl := memberTestCluster(t, msgs)
	lead := leaderID(t, c, []int{0, 1, 2})
	dead := (lead + 1) % 3
	if err := c.Kill(dead); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(c.DataDir(dead)); err != nil {
		t.Fatal(err)
	}
	removeMember(t, c, dead)
	n3 := joinNode(t, c)
	addMember(t, c, n3)
	other := 3 - lead - dead
	if err := c.Kill(other); err != nil {
		t.Fatal(err)
	}
	// Voters {lead, other, n3} with other down: every pop commits on the
	// leader and n3, and reads what n3 replicated.
	popAll(t, cl, msgs)
	st, err := c.Status(n3, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.Applied == 0 || st.Role == "" {
		t.Fatalf("new node status %+v", st)
	}
}

// TestMemberAddNotRunningFails: adding a node that is not running fails
// within the bound and leaves the voters as they were.
func TestMemberAddNotRunningFails(t *testing.T) {
	c, _ := memberTestCluster(t, 1)
	id, err := c.AddNode("--join")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, errs, code := raftmqCLI(t, "member", "add", "--id", fmt.Sprint(id), "--config", c.ConfigPath, "--catch-up-timeout", "2s")
	took := time.Since(start)
	if code != 1 || !strings.Contains(errs, "did not catch up") {
		t.Fatalf("member add of a dead node: exit %d\n%s%s", code, out, errs)
	}
	if took > 20*time.Second {
		t.Fatalf("member add took %v to fail with a 2s bound", took)
	}
	if got := memberList(t, c); len(got) != 3 || got[id] != "" {
		t.Fatalf("members after the failed add: %v", got)
	}
}
