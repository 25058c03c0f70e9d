package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker"
	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/internal/proccluster"
	"github.com/raftmq/raftmq/internal/testbin"
	"github.com/raftmq/raftmq/internal/testwait"
)

// failpointKillMsg is the line a failpoint logs just before its SIGKILL
// (broker/failpoint_on.go); a normal binary must not contain it.
const failpointKillMsg = "failpoint reached: killing this process"

// fpArgs are fastArgs without the election timeout: each node gets its own
// through RAFTMQ_ELECTION_TICKS so that node 0 wins the first election
// (150–300 ms against 600–1200 ms) and the test knows the leader before it
// arms a failpoint.
var fpArgs = []string{"--tick-interval", "10ms", "--heartbeat-ticks", "2"}

func fpBaseEnv(i int) []string {
	if i == 0 {
		return []string{"RAFTMQ_ELECTION_TICKS=15"}
	}
	return []string{"RAFTMQ_ELECTION_TICKS=60"}
}

func armed(i int, spec string) []string {
	return append(fpBaseEnv(i), broker.FailpointsEnv+"="+spec)
}

// failpointCase crashes node victim on the hit-th hit of point. Node 0 is
// the leader at the start.
type failpointCase struct {
	point  string
	nodes  int
	victim int
	hit    int
	args   []string // extra serve flags
	// power: every data dir is on powerfs and the victim's disk loses
	// what was not durable before it restarts (stronger than SIGKILL,
	// which keeps the page cache).
	power bool
}

func (tc failpointCase) name() string {
	role := "leader"
	if tc.victim != 0 {
		role = "follower"
	}
	if tc.nodes == 1 {
		role = "single"
	}
	if tc.power {
		role += "/power-cut"
	}
	return fmt.Sprintf("%s/%s", tc.point, role)
}

// TestFailpoints: for every crash point around an fsync, a node running a
// put/pop workload dies there by SIGKILL, is restarted, and the cluster
// heals; the drain then holds every acknowledged put exactly once, in
// order, and no acknowledged pop comes back.
func TestFailpoints(t *testing.T) {
	fpBin, err := testbin.Build(t.TempDir(), false, "failpoints")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("only the tagged binary holds failpoints", func(t *testing.T) {
		for _, b := range []struct {
			path string
			want bool
		}{{bin, false}, {fpBin, true}} {
			data, err := os.ReadFile(b.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Contains(data, []byte(failpointKillMsg)); got != b.want {
				t.Errorf("%s holds the failpoint kill: %v, want %v", b.path, got, b.want)
			}
		}
	})
	t.Run("a typo in the env var is refused at start", func(t *testing.T) {
		cmd := exec.Command(fpBin, "serve", "--data-dir", t.TempDir())
		cmd.Env = append(os.Environ(), broker.FailpointsEnv+"=log-after-persits=3")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), `unknown failpoint "log-after-persits"`) {
			t.Fatalf("exit %v, output %q: want exit 2 naming the unknown failpoint", err, out)
		}
	})

	snap := []string{"--snapshot-entries", "100", "--trailing-entries", "20", "--snapshot-chunk-bytes", "4096"}
	var cases []failpointCase
	for _, p := range []string{"log-before-persist", "log-after-persist", "state-before-commit", "state-after-commit", "before-reply"} {
		cases = append(cases, failpointCase{point: p, nodes: 1, hit: 150}, failpointCase{point: p, nodes: 3, hit: 150})
	}
	for _, p := range []string{"log-before-persist", "log-after-persist"} {
		cases = append(cases, failpointCase{point: p, nodes: 3, victim: 1, hit: 150})
	}
	cases = append(cases,
		failpointCase{point: "snapshot-before-record", nodes: 1, hit: 1, args: snap},
		failpointCase{point: "snapshot-before-record", nodes: 3, hit: 1, args: snap})
	// Where a power cut is stronger: right after an fsync (was it one?),
	// before a reply, and with a snapshot file not yet recorded.
	for _, p := range []string{"log-after-persist", "state-after-commit", "before-reply"} {
		cases = append(cases, failpointCase{point: p, nodes: 1, hit: 150, power: true}, failpointCase{point: p, nodes: 3, hit: 150, power: true})
	}
	cases = append(cases, failpointCase{point: "snapshot-before-record", nodes: 1, hit: 1, args: snap, power: true})
	covered := map[string]bool{"install-between-swaps": true, "snapshot-file-written": true} // the subtests below
	for _, tc := range cases {
		covered[tc.point] = true
		t.Run(tc.name(), func(t *testing.T) {
			t.Parallel()
			runFailpointCase(t, fpBin, tc)
		})
	}
	for _, p := range broker.FailpointNames() {
		if !covered[p] {
			t.Errorf("failpoint %s has no test", p)
		}
	}
	t.Run("install-between-swaps/follower", func(t *testing.T) {
		t.Parallel()
		runInstallCase(t, fpBin, snap)
	})
	t.Run("snapshot-file-written/leader", func(t *testing.T) {
		t.Parallel()
		runSendFileCase(t, fpBin, snap)
	})
	t.Run("no ack before fsync", func(t *testing.T) {
		t.Parallel()
		runNoAckBeforeFsync(t, fpBin)
	})
}

func fpOptions(nodes int, env map[int][]string, extra []string) proccluster.Options {
	opts := proccluster.Options{Nodes: nodes, Args: append(append([]string{}, fpArgs...), extra...), Env: map[int][]string{}}
	for i := 0; i < nodes; i++ {
		opts.Env[i] = fpBaseEnv(i)
		if e, ok := env[i]; ok {
			opts.Env[i] = e
		}
	}
	return opts
}

// newFailpointPowerCluster is newFailpointCluster with every data dir on
// powerfs (seed 1: nothing random is drawn without torn writes).
func newFailpointPowerCluster(t *testing.T, fpBin string, nodes int, env map[int][]string, extra []string) *powerCluster {
	t.Helper()
	pc := startPowerCluster(t, fpBin, fpOptions(nodes, env, extra), 1, nil)
	prepareFailpointCluster(t, pc.Cluster)
	return pc
}

func newFailpointCluster(t *testing.T, fpBin string, nodes int, env map[int][]string, extra []string) *proccluster.Cluster {
	t.Helper()
	c := startCluster(t, fpBin, fpOptions(nodes, env, extra))
	prepareFailpointCluster(t, c)
	return c
}

// prepareFailpointCluster checks node 0 leads and creates topic q.
func prepareFailpointCluster(t *testing.T, c *proccluster.Cluster) {
	t.Helper()
	leader, _, err := c.WaitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if leader != 0 {
		t.Fatalf("node %d won the first election; node 0 (the shortest election timeout) was to", leader)
	}
	cl, err := c.Client(client.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if created, err := cl.CreateTopic(context.Background(), "q"); err != nil || !created {
		t.Fatalf("create topic: %v %v", created, err)
	}
}

// runWorkload runs one producer and, unless putsOnly, one consumer against
// c until stop is closed; wait returns when both have ended.
func runWorkload(c *proccluster.Cluster, h *history, putsOnly bool) (stop chan struct{}, wait func()) {
	stop = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); produce(c, h, stop) }()
	if !putsOnly {
		wg.Add(1)
		go func() { defer wg.Done(); consume(c, h, stop) }()
	}
	return stop, wg.Wait
}

func runFailpointCase(t *testing.T, fpBin string, tc failpointCase) {
	spec := fmt.Sprintf("%s=%d", tc.point, tc.hit)
	env := map[int][]string{tc.victim: armed(tc.victim, spec)}
	var c *proccluster.Cluster
	var pc *powerCluster
	if tc.power {
		pc = newFailpointPowerCluster(t, fpBin, tc.nodes, env, tc.args)
		c = pc.Cluster
	} else {
		c = newFailpointCluster(t, fpBin, tc.nodes, env, tc.args)
	}
	h := &history{ackedPuts: map[int]bool{}, unknown: map[int]bool{}}
	stop, wait := runWorkload(c, h, false)
	assertFailpointDeath(t, c, tc.victim, tc.point, 20*time.Second)
	if pc != nil {
		if err := pc.fs[tc.victim].Cut(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wait()
	restartAndCheck(t, c, h, tc.victim)
}

// assertFailpointDeath waits for node i to die and checks that point killed
// it: exit by SIGKILL, and the line naming point in its log.
func assertFailpointDeath(t *testing.T, c *proccluster.Cluster, i int, point string, timeout time.Duration) {
	t.Helper()
	exitErr, err := c.WaitExit(i, timeout)
	if err != nil {
		t.Fatalf("the failpoint %s was not reached: %v", point, err)
	}
	var ee *exec.ExitError
	if !errors.As(exitErr, &ee) {
		t.Fatalf("node %d exited with %v, want SIGKILL", i, exitErr)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("node %d exited with %v, want SIGKILL", i, exitErr)
	}
	f, err := os.Open(c.LogPath(i))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Failpoint string `json:"failpoint"`
			Message   string `json:"message"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Failpoint == point && line.Message == failpointKillMsg {
			return
		}
	}
	t.Fatalf("node %d died by SIGKILL but its log has no %q line naming %s (scan: %v)", i, failpointKillMsg, point, sc.Err())
}

// restartAndCheck restarts node i disarmed, waits until every node has
// applied the same index, drains the queue and checks the whole history.
func restartAndCheck(t *testing.T, c *proccluster.Cluster, h *history, i int) {
	t.Helper()
	c.SetEnv(i, fpBaseEnv(i))
	if err := c.Start(i); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WaitLeader(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	cl, err := c.Client(client.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var drained []int
	for {
		m, ok, err := cl.Pop(context.Background(), "q")
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
		if !ok {
			break
		}
		drained = append(drained, msgNum(t, m))
	}
	testwait.For(t, 10*time.Second, "every node applied the same index", func() bool {
		var applied []uint64
		for j := range c.Addrs {
			st, err := c.Status(j, 300*time.Millisecond)
			if err != nil {
				return false
			}
			applied = append(applied, st.Applied)
		}
		for _, a := range applied {
			if a != applied[0] {
				return false
			}
		}
		return true
	})
	checkQueueHistory(t, h, drained)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ackedPuts) == 0 || len(h.popped)+len(drained) == 0 {
		t.Fatalf("no acknowledged traffic to check (acked puts %d, pops %d, drained %d)", len(h.ackedPuts), len(h.popped), len(drained))
	}
	t.Logf("acked puts %d, unknown %d, acked pops %d, unknown pops %d, drained %d", len(h.ackedPuts), len(h.unknown), len(h.popped), h.lostPops, len(drained))
}

// runInstallCase: a follower that was down while the leader compacted its
// log restarts, receives a snapshot and dies between resetting raft.db to
// it and swapping state.db; restarted again, it finishes the install.
func runInstallCase(t *testing.T, fpBin string, snap []string) {
	const victim = 2
	c := newFailpointCluster(t, fpBin, 3, nil, snap)
	if _, err := c.Stop(victim, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	h := &history{ackedPuts: map[int]bool{}, unknown: map[int]bool{}}
	stop, wait := runWorkload(c, h, false)
	testwait.For(t, 20*time.Second, "the leader compacted past the stopped follower", func() bool {
		st, err := c.Status(0, 300*time.Millisecond)
		h.mu.Lock()
		defer h.mu.Unlock()
		return err == nil && st.FirstIndex > 50 && len(h.ackedPuts) >= 150
	})
	close(stop)
	wait()
	c.SetEnv(victim, armed(victim, "install-between-swaps=1"))
	if err := c.Start(victim); err != nil {
		t.Fatal(err)
	}
	assertFailpointDeath(t, c, victim, "install-between-swaps", 20*time.Second)
	restartAndCheck(t, c, h, victim)
}

// runSendFileCase: the leader dies right after it wrote a snapshot file
// for a follower that was down while it compacted (decision 26: the file
// exists only for that send). Restarted, it deletes the leftover file,
// loses nothing, and the follower still catches up by a snapshot.
func runSendFileCase(t *testing.T, fpBin string, snap []string) {
	const victim, follower = 0, 2
	c := newFailpointCluster(t, fpBin, 3, map[int][]string{victim: armed(victim, "snapshot-file-written=1")}, snap)
	if _, err := c.Stop(follower, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	h := &history{ackedPuts: map[int]bool{}, unknown: map[int]bool{}}
	stop, wait := runWorkload(c, h, false)
	testwait.For(t, 20*time.Second, "the leader compacted past the stopped follower", func() bool {
		st, err := c.Status(victim, 300*time.Millisecond)
		h.mu.Lock()
		defer h.mu.Unlock()
		return err == nil && st.FirstIndex > 50 && len(h.ackedPuts) >= 150
	})
	close(stop)
	wait()
	if err := c.Start(follower); err != nil {
		t.Fatal(err)
	}
	assertFailpointDeath(t, c, victim, "snapshot-file-written", 20*time.Second)
	restartAndCheck(t, c, h, victim)
	st, err := c.Status(follower, time.Second)
	if err != nil || st.Snapshot == 0 {
		t.Fatalf("follower status %+v (%v): want it caught up by a snapshot", st, err)
	}
	if left, _ := filepath.Glob(filepath.Join(c.DataDir(victim), "snapshots", "*.snap")); len(left) != 0 {
		t.Fatalf("snapshot files left on the restarted leader: %v", left)
	}
}

// runNoAckBeforeFsync: one producer (no consumer, so no pop can explain a
// missing message) against a single node that dies before persisting a
// batch: whatever was in the batch was never acknowledged, so the drain
// after the restart holds every acknowledged put.
func runNoAckBeforeFsync(t *testing.T, fpBin string) {
	c := newFailpointCluster(t, fpBin, 1, map[int][]string{0: armed(0, "log-before-persist=80")}, nil)
	h := &history{ackedPuts: map[int]bool{}, unknown: map[int]bool{}}
	stop, wait := runWorkload(c, h, true)
	assertFailpointDeath(t, c, 0, "log-before-persist", 20*time.Second)
	close(stop)
	wait()
	h.mu.Lock()
	unknown, lostPops := len(h.unknown), h.lostPops
	h.mu.Unlock()
	if lostPops != 0 || unknown == 0 {
		t.Fatalf("unknown puts %d, unknown pops %d: want the put in flight at the crash unknown and no pops", unknown, lostPops)
	}
	restartAndCheck(t, c, h, 0)
}
