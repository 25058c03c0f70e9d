package deploy

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
	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/testwait"
)

const clusterInContainer = "/etc/raftmq/cluster.json"

// composeProject drives deploy/docker-compose.yml under its own project name.
type composeProject struct {
	t       *testing.T
	name    string
	image   string
	command string // docker-compose
}

func (p composeProject) run(timeout time.Duration, args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.command, append([]string{"-p", p.name, "-f", "docker-compose.yml"}, args...)...)
	cmd.Env = append(os.Environ(), "RAFTMQ_IMAGE="+p.image)
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("%s %s: %v\n%s", p.command, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// container is the container name of service node<i>.
func (p composeProject) container(i int) string {
	return strings.TrimSpace(p.run(30*time.Second, "ps", "-q", fmt.Sprintf("node%d", i)))
}

// roles asks every given node for its own status and returns id -> role
// ("" when it does not answer).
func roles(t *testing.T, cluster config.Cluster, containers map[int]string) map[int]string {
	t.Helper()
	out := map[int]string{}
	for id, c := range containers {
		res := raftmqIn(t, c, "", "status", "--json", "--timeout", "2s", "--servers", cluster.Addresses[id].ClientAddr())
		out[id] = ""
		if res.code == 0 {
			out[id] = findRole(res.stdout)
		}
	}
	return out
}

// findRole returns the first "role" in a JSON document of any shape, so the
// test does not depend on how `status --json` nests its rows.
func findRole(doc string) string {
	var v any
	if json.Unmarshal([]byte(doc), &v) != nil {
		return ""
	}
	var walk func(any) string
	walk = func(v any) string {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["role"].(string); ok {
				return r
			}
			for _, e := range x {
				if r := walk(e); r != "" {
					return r
				}
			}
		case []any:
			for _, e := range x {
				if r := walk(e); r != "" {
					return r
				}
			}
		}
		return ""
	}
	return walk(v)
}

// waitLeader waits until exactly one of the nodes says it is leader.
func waitLeader(t *testing.T, cluster config.Cluster, containers map[int]string) int {
	t.Helper()
	leader := -1
	testwait.Err(t, readyWithin, "one leader", func() error {
		rs := roles(t, cluster, containers)
		leader = -1
		for id, r := range rs {
			if r == "Leader" {
				if leader >= 0 {
					return fmt.Errorf("two leaders: %v", rs)
				}
				leader = id
			}
		}
		if leader < 0 {
			return errors.New(fmt.Sprint("no leader: ", rs))
		}
		return nil
	})
	return leader
}

// TestComposeCluster brings up the three-node cluster of docker-compose.yml,
// writes through any node, stops the leader gracefully, reads on with the
// other two, and brings the old leader back on its volume.
func TestComposeCluster(t *testing.T) {
	requireDocker(t)
	compose, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose not installed (Debian: apt-get install docker-compose)")
	}
	cluster, err := config.LoadCluster("cluster.docker.json")
	if err != nil {
		t.Fatal(err)
	}
	p := composeProject{t: t, name: uniqueName("raftmqtest"), image: testImage(t), command: compose}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, compose, "-p", p.name, "-f", "docker-compose.yml", "down", "-v", "-t", "5")
		cmd.Env = append(os.Environ(), "RAFTMQ_IMAGE="+p.image)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
	})
	p.run(3*time.Minute, "up", "-d", "--no-build")
	containers := map[int]string{}
	for i := range cluster.Addresses {
		containers[i] = p.container(i)
	}
	leader := waitLeader(t, cluster, containers)
	t.Logf("leader: node%d", leader)

	// Writes through a follower: the CLI follows the not_leader hint.
	follower := (leader + 1) % len(containers)
	// The cluster file through the environment: urfave/cli stops reading
	// flags at the first argument, so --config cannot simply be appended.
	viaConfig := func(c, stdin string, args ...string) result {
		return raftmqInEnv(t, c, []string{"RAFTMQ_CONFIG=" + clusterInContainer}, stdin, args...)
	}
	expectCLI(t, viaConfig(containers[follower], "", "topic", "create", "jobs"), 0, nil, "topic create via a follower")
	expectCLI(t, viaConfig(containers[follower], "", "produce", "--topic", "jobs", "j1", "j2", "j3"), 0, nil, "produce via a follower")

	// Stop the leader gracefully: the other two elect a leader and serve.
	stopGracefully(t, containers[leader])
	rest := map[int]string{}
	for id, c := range containers {
		if id != leader {
			rest[id] = c
		}
	}
	newLeader := waitLeader(t, cluster, rest)
	t.Logf("after stopping node%d: leader node%d", leader, newLeader)
	expectCLI(t, viaConfig(rest[newLeader], "", "consume", "--topic", "jobs", "-n", "1"), 0, []string{"j1"}, "consume with one node down")

	// The old leader comes back on its volume and catches up.
	mustRun(t, time.Minute, "docker", "start", containers[leader])
	waitAnswers(t, containers[leader], "--servers", cluster.Addresses[leader].ClientAddr())
	expectCLI(t, viaConfig(containers[leader], "", "consume", "--topic", "jobs", "-n", "0"), 0, []string{"j2", "j3"}, "consume rest after the old leader rejoined")

	cutAndRejoin(t, p, cluster, containers, viaConfig)
	for _, c := range containers {
		stopGracefully(t, c)
	}
}

// cutAndRejoin takes the leader's container off the compose network with
// `docker network disconnect`: it stops leading (it cannot reach a quorum),
// the other two elect a leader and take writes, and once reconnected at its
// address the cut node catches up on what it missed.
func cutAndRejoin(t *testing.T, p composeProject, cluster config.Cluster, containers map[int]string,
	viaConfig func(c, stdin string, args ...string) result) {
	t.Helper()
	cut := waitLeader(t, cluster, containers)
	network := strings.TrimSpace(mustRun(t, 30*time.Second, "docker", "inspect", "--format",
		"{{range $name, $_ := .NetworkSettings.Networks}}{{$name}}{{end}}", containers[cut]))
	mustRun(t, time.Minute, "docker", "network", "disconnect", network, containers[cut])
	reconnected := false
	reconnect := func() {
		if !reconnected {
			reconnected = true
			mustRun(t, time.Minute, "docker", "network", "connect", "--ip", cluster.Addresses[cut].IP, network, containers[cut])
		}
	}
	t.Cleanup(reconnect) // a failed check must not leave the container cut off for the stop

	// The cut node is reachable only from inside its own container now.
	self := fmt.Sprintf("127.0.0.1:%d", cluster.Addresses[cut].Port)
	testwait.Err(t, readyWithin, fmt.Sprintf("cut-off node%d stops leading", cut), func() error {
		if role := statusIn(t, containers[cut], self).Role; role == "Leader" || role == "" {
			return fmt.Errorf("node%d answers role %q", cut, role)
		}
		return nil
	})
	rest := map[int]string{}
	for id, c := range containers {
		if id != cut {
			rest[id] = c
		}
	}
	majority := waitLeader(t, cluster, rest)
	t.Logf("node%d cut off: leader node%d", cut, majority)
	expectCLI(t, viaConfig(rest[majority], "", "produce", "--topic", "jobs", "k1", "k2"), 0, nil, "produce while a node is cut off")
	goal := statusIn(t, rest[majority], cluster.Addresses[majority].ClientAddr()).Commit
	if st := statusIn(t, containers[cut], self); st.Applied >= goal {
		t.Fatalf("cut-off node%d applied %d, the majority committed %d: the cut did not cut", cut, st.Applied, goal)
	}

	reconnect()
	testwait.Err(t, readyWithin, fmt.Sprintf("node%d catches up after reconnecting", cut), func() error {
		if st := statusIn(t, containers[cut], self); st.Applied < goal {
			return fmt.Errorf("node%d applied %d of %d", cut, st.Applied, goal)
		}
		return nil
	})
	waitLeader(t, cluster, containers)
	expectCLI(t, viaConfig(containers[cut], "", "consume", "--topic", "jobs", "-n", "0"), 0, []string{"k1", "k2"},
		"consume through the node that was cut off")
}

// statusIn asks one server for its status from inside container; a server
// that does not answer reads as the zero status.
func statusIn(t *testing.T, container, server string) wire.Status {
	t.Helper()
	res := raftmqIn(t, container, "", "status", "--json", "--timeout", "2s", "--servers", server)
	var rows []struct {
		Status *wire.Status `json:"status"`
	}
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &rows) != nil || len(rows) != 1 || rows[0].Status == nil {
		return wire.Status{}
	}
	return *rows[0].Status
}
