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
	for id, c := range containers {
		if id != leader {
			stopGracefully(t, c)
		}
	}
}
