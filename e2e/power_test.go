package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/internal/powerfs"
	"github.com/raftmq/raftmq/internal/proccluster"
	"github.com/raftmq/raftmq/internal/testbin"
)

// Power-loss scenarios: real broker processes, each data directory on its
// own powerfs mount, power cuts at seeded moments. After each scenario
// every acknowledged put must come out exactly once and in order, and no
// acknowledged pop may come back.
var (
	powerSeed = flag.Int64("power.seed", 0, "seed of the power-loss scenarios (0: from the clock; printed)")
	powerLong = flag.Duration("power.long", 0, "run TestPowerLong for this long (e.g. 30m)")
)

// powerCluster is a cluster whose data directories are powerfs mounts.
type powerCluster struct {
	*proccluster.Cluster
	fs  []*powerfs.FS
	rng *rand.Rand
	// leaderWait bounds each wait for a leader after a cut.
	leaderWait time.Duration
}

// newPowerCluster mounts one powerfs per node and starts the brokers of
// binary b, or skips the test where FUSE cannot work. torn says which
// nodes get torn writes.
func newPowerCluster(t *testing.T, b string, nodes int, seed int64, torn map[int]bool, extra ...string) *powerCluster {
	t.Helper()
	return startPowerCluster(t, b, proccluster.Options{Nodes: nodes, Args: append(append([]string{}, fastArgs...), extra...)}, seed, torn)
}

// startPowerCluster is newPowerCluster with the cluster's options given.
func startPowerCluster(t *testing.T, b string, opts proccluster.Options, seed int64, torn map[int]bool) *powerCluster {
	t.Helper()
	if err := powerfs.Available(); err != nil {
		t.Skipf("power-loss scenarios need FUSE: %v (run as root with /dev/fuse; .ci/run installs fuse3)", err)
	}
	nodes := opts.Nodes
	c, err := proccluster.NewCluster(b, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	pc := &powerCluster{Cluster: c, rng: rand.New(rand.NewSource(seed)), leaderWait: 30 * time.Second}
	for i := 0; i < nodes; i++ {
		backing := filepath.Join(c.Dir, fmt.Sprintf("node%d.disk", i))
		for _, d := range []string{backing, c.DataDir(i)} {
			if err := os.MkdirAll(d, 0o750); err != nil {
				t.Fatal(err)
			}
		}
		fs, err := powerfs.Mount(backing, c.DataDir(i), powerfs.Options{Seed: seed + int64(i), TornWrites: torn[i], Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		pc.fs = append(pc.fs, fs)
	}
	t.Cleanup(func() { // runs after the brokers are killed below
		for _, fs := range pc.fs {
			if err := fs.Close(); err != nil {
				t.Error(err)
			}
		}
	})
	closeWithLogs(t, c)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	return pc
}

// cut loses power on the given nodes at the same instant: SIGKILL, drop
// everything not durable, start again.
func (pc *powerCluster) cut(nodes ...int) error {
	for _, i := range nodes {
		if pc.Running(i) {
			_ = pc.Kill(i)
		}
	}
	for _, i := range nodes {
		if err := pc.fs[i].Cut(); err != nil {
			return err
		}
	}
	for _, i := range nodes {
		if err := pc.Start(i); err != nil {
			return err
		}
	}
	return nil
}

func (pc *powerCluster) all() []int {
	out := make([]int, len(pc.Addrs))
	for i := range out {
		out[i] = i
	}
	return out
}

func (pc *powerCluster) cuts() int {
	k := 0
	for _, fs := range pc.fs {
		k += fs.Stats().Cuts
	}
	return k
}

// powerLoad is a producer and a consumer on one topic, recording what was
// acknowledged.
type powerLoad struct {
	pc   *powerCluster
	h    *history
	stop chan struct{}
	wg   sync.WaitGroup
}

func startLoad(pc *powerCluster, h *history) *powerLoad {
	l := &powerLoad{pc: pc, h: h, stop: make(chan struct{})}
	l.wg.Add(2)
	go func() { defer l.wg.Done(); produceUntil(pc.Cluster, h, l.stop) }()
	go func() { defer l.wg.Done(); consumeUntil(pc.Cluster, h, l.stop) }()
	return l
}

func (l *powerLoad) halt() {
	close(l.stop)
	l.wg.Wait()
}

// produceUntil puts m0, m1, ... until stop, through every failure.
func produceUntil(c *proccluster.Cluster, h *history, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		produce(c, h, stop)
		time.Sleep(20 * time.Millisecond) // the broker died: let it come back
	}
}

func consumeUntil(c *proccluster.Cluster, h *history, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		consume(c, h, stop)
		time.Sleep(20 * time.Millisecond)
	}
}

// acked is the number of acknowledged puts and pops so far.
func (h *history) acked() (puts, pops int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ackedPuts), len(h.popped)
}

// waitAcked waits until n more operations are acknowledged.
func waitAcked(h *history, n int, timeout time.Duration) error {
	p0, q0 := h.acked()
	deadline := time.Now().Add(timeout)
	for {
		p, q := h.acked()
		if p+q-p0-q0 >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d more operations acknowledged in %v", p+q-p0-q0, n, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settle waits for a leader, then drains the topic and checks the whole
// history. It returns what it found wrong.
func (pc *powerCluster) settle(h *history) error {
	if _, _, err := pc.WaitLeader(pc.leaderWait); err != nil {
		return err
	}
	cl, err := pc.Client(client.Options{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cl.Close()
	var drained []int
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, ok, err := cl.Pop(context.Background(), "q")
		if err != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("drain: %w", err)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !ok {
			break
		}
		n, err := strconv.Atoi(strings.TrimPrefix(m, "m"))
		if err != nil {
			return fmt.Errorf("drained %q, which was never sent", m)
		}
		drained = append(drained, n)
	}
	return historyError(h, drained)
}

// historyError is checkQueueHistory returning its first finding.
func historyError(h *history, drained []int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	all := append(append([]int{}, h.popped...), drained...)
	seen := map[int]bool{}
	for i, n := range all {
		if seen[n] {
			return fmt.Errorf("message m%d delivered twice (an acknowledged pop came back)", n)
		}
		seen[n] = true
		if i > 0 && n <= all[i-1] {
			return fmt.Errorf("order broken at position %d: m%d after m%d", i, n, all[i-1])
		}
		if !h.ackedPuts[n] && !h.unknown[n] {
			return fmt.Errorf("message m%d was never sent", n)
		}
	}
	var missing []int
	for n := range h.ackedPuts {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	sort.Ints(missing)
	if len(missing) > h.lostPops {
		if len(missing) > 20 {
			missing = missing[:20]
		}
		return fmt.Errorf("%d acknowledged puts lost (only %d pops had an unknown outcome), first: %v", len(missing), h.lostPops, missing)
	}
	return nil
}

// createTopic creates topic q, retrying through elections.
func createTopic(pc *powerCluster) error {
	if _, _, err := pc.WaitLeader(30 * time.Second); err != nil {
		return err
	}
	cl, err := pc.Client(client.Options{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = cl.CreateTopic(context.Background(), "q")
	return err
}

func newHistory() *history {
	return &history{ackedPuts: map[int]bool{}, unknown: map[int]bool{}}
}

func seedFor(t *testing.T) int64 {
	seed := *powerSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000
	}
	t.Logf("power-loss seed %d (replay with -power.seed=%d)", seed, seed)
	return seed
}

// scenario is one power-loss story: it drives pc under load and returns
// what it found wrong.
type scenario func(pc *powerCluster, h *history) error

// cutRounds cuts the nodes chosen by pick, rounds times, each after a
// seeded number of acknowledged operations.
func cutRounds(rounds int, pick func(pc *powerCluster, round int) []int) scenario {
	return func(pc *powerCluster, h *history) error {
		for round := 0; round < rounds; round++ {
			l := startLoad(pc, h)
			err := waitAcked(h, 30+pc.rng.Intn(120), 60*time.Second)
			nodes := pick(pc, round)
			if err == nil {
				err = pc.cut(nodes...)
			}
			l.halt()
			if err != nil {
				return fmt.Errorf("round %d: %w", round, err)
			}
			if _, _, err := pc.WaitLeader(pc.leaderWait); err != nil {
				return fmt.Errorf("round %d, after cutting %v: %w", round, nodes, err)
			}
		}
		return nil
	}
}

// runPower builds a cluster, runs the scenario and checks the history.
func runPower(t *testing.T, b string, nodes int, seed int64, torn map[int]bool, sc scenario, extra ...string) (*powerCluster, *history, error) {
	pc := newPowerCluster(t, b, nodes, seed, torn, extra...)
	h := newHistory()
	if err := createTopic(pc); err != nil {
		return pc, h, err
	}
	if err := sc(pc, h); err != nil {
		return pc, h, err
	}
	err := pc.settle(h)
	p, q := h.acked()
	t.Logf("seed %d, %d nodes: %d power cuts, %d acknowledged puts, %d acknowledged pops", seed, nodes, pc.cuts(), p, q)
	return pc, h, err
}

func leaderOr0(pc *powerCluster) int {
	if i, _, err := pc.WaitLeader(30 * time.Second); err == nil {
		return i
	}
	return 0
}

func TestPowerOneNode(t *testing.T) {
	_, _, err := runPower(t, bin, 1, seedFor(t), nil, cutRounds(3, func(*powerCluster, int) []int { return []int{0} }))
	if err != nil {
		t.Fatal(err)
	}
}

func TestPowerThreeNodesAtOnce(t *testing.T) {
	_, _, err := runPower(t, bin, 3, seedFor(t), nil, cutRounds(2, func(pc *powerCluster, _ int) []int { return pc.all() }))
	if err != nil {
		t.Fatal(err)
	}
}

// TestPowerLeaderThenFollower: the leader loses power alone; later a
// follower does.
func TestPowerLeaderThenFollower(t *testing.T) {
	_, _, err := runPower(t, bin, 3, seedFor(t), nil, cutRounds(2, func(pc *powerCluster, round int) []int {
		lead := leaderOr0(pc)
		if round == 0 {
			return []int{lead}
		}
		return []int{(lead + 1 + pc.rng.Intn(2)) % 3}
	}))
	if err != nil {
		t.Fatal(err)
	}
}

// TestPowerDuringSnapshots: snapshots and compactions every few entries,
// so the seeded cuts land among them (one node and three at once).
func TestPowerDuringSnapshots(t *testing.T) {
	snap := []string{"--snapshot-entries", "100", "--trailing-entries", "10"}
	for _, nodes := range []int{1, 3} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) {
			_, _, err := runPower(t, bin, nodes, seedFor(t), nil, cutRounds(3, func(pc *powerCluster, _ int) []int { return pc.all() }), snap...)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPowerDuringInstallSnapshot: a follower is down while the leader
// compacts past its log; it comes back, and loses power again at a seeded
// moment while the snapshot is being sent to it.
func TestPowerDuringInstallSnapshot(t *testing.T) {
	snap := []string{"--snapshot-entries", "100", "--trailing-entries", "5", "--snapshot-chunk-bytes", "4096"}
	pc, _, err := runPower(t, bin, 3, seedFor(t), nil, func(pc *powerCluster, h *history) error {
		for round := 0; round < 2; round++ {
			lead := leaderOr0(pc)
			f := (lead + 1) % 3
			if err := pc.Kill(f); err != nil {
				return err
			}
			l := startLoad(pc, h)
			err := waitAcked(h, 250, 60*time.Second)
			if err == nil {
				err = pc.Start(f)
			}
			if err == nil {
				time.Sleep(time.Duration(pc.rng.Intn(400)) * time.Millisecond)
				err = pc.cut(f)
			}
			l.halt()
			if err != nil {
				return fmt.Errorf("round %d: %w", round, err)
			}
		}
		return nil
	}, snap...)
	if err != nil {
		t.Fatal(err)
	}
	if pc != nil {
		k := 0
		for i := range pc.Addrs {
			b, _ := os.ReadFile(pc.LogPath(i))
			k += strings.Count(string(b), `"snapshot received"`)
		}
		t.Logf("snapshots received by followers: %d", k)
	}
}

// TestPowerTornWritesOnAMinority: one node of three keeps torn writes on
// every cut; all three lose power together.
func TestPowerTornWritesOnAMinority(t *testing.T) {
	pc, _, err := runPower(t, bin, 3, seedFor(t), map[int]bool{2: true}, cutRounds(3, func(pc *powerCluster, _ int) []int { return pc.all() }))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("torn writes kept in part: %d", pc.fs[2].Stats().TornKept)
}

// TestPowerFsyncEIO: the leader's next raft.db (or state.db) fsync fails. The broker
// must stop (never serve as if the write had happened); after a cut and a
// restart nothing acknowledged is lost.
func TestPowerFsyncEIO(t *testing.T) {
	for _, tc := range []struct {
		file  string
		nodes int
	}{{"raft.db", 1}, {"raft.db", 3}, {"state.db", 1}} {
		nodes := tc.nodes
		t.Run(fmt.Sprintf("%s/nodes=%d", tc.file, nodes), func(t *testing.T) {
			_, _, err := runPower(t, bin, nodes, seedFor(t), nil, func(pc *powerCluster, h *history) error {
				l := startLoad(pc, h)
				defer l.halt()
				if err := waitAcked(h, 50, 60*time.Second); err != nil {
					return err
				}
				lead := leaderOr0(pc)
				pc.fs[lead].FailNextFsync(tc.file)
				exitErr, err := pc.WaitExit(lead, 30*time.Second)
				if err != nil {
					return fmt.Errorf("the broker whose fsync failed did not stop: %w", err)
				}
				if exitErr == nil {
					return errors.New("the broker whose fsync failed exited 0")
				}
				if got := pc.fs[lead].Stats().FailedFsyncs; got != 1 {
					return fmt.Errorf("%d fsyncs failed, want 1", got)
				}
				return pc.cut(lead)
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPowerCatchesASkippedFsync proves the suite can fail: a broker built
// with the skipfsync tag commits raft.db without fsync, and the one-node
// scenario must detect the loss.
func TestPowerCatchesASkippedFsync(t *testing.T) {
	if err := powerfs.Available(); err != nil {
		t.Skipf("power-loss scenarios need FUSE: %v", err)
	}
	broken, err := testbin.Build(t.TempDir(), false, "skipfsync")
	if err != nil {
		t.Fatal(err)
	}
	seed := seedFor(t)
	cut := cutRounds(2, func(*powerCluster, int) []int { return []int{0} })
	pc, _, err := runPower(t, broken, 1, seed, nil, func(pc *powerCluster, h *history) error {
		pc.leaderWait = 10 * time.Second // a one-node broker that comes back leads in well under a second
		return cut(pc, h)
	})
	if err == nil {
		t.Fatalf("seed %d: a broker that never fsyncs raft.db passed the power-loss scenario", seed)
	}
	t.Logf("the scenario caught the skipped fsync: %v", err)
	if b, rerr := os.ReadFile(pc.LogPath(0)); rerr == nil {
		t.Logf("the broker's last words:\n%s", tail(b, 800))
	}
}

// TestPowerAmnesiaNoticed: a follower's data directory comes back empty
// (as a power cut did before the data directory was fsynced). Started
// without --recover, it must notice from the leader's messages that it
// lost data and recover (no votes) until caught up; nothing acknowledged
// is lost.
func TestPowerAmnesiaNoticed(t *testing.T) {
	_, _, err := runPower(t, bin, 3, seedFor(t), nil, func(pc *powerCluster, h *history) error {
		l := startLoad(pc, h)
		defer l.halt()
		if err := waitAcked(h, 60, 60*time.Second); err != nil {
			return err
		}
		f := (leaderOr0(pc) + 1) % 3
		if err := pc.Kill(f); err != nil {
			return err
		}
		ents, err := os.ReadDir(pc.DataDir(f))
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(pc.DataDir(f), e.Name())); err != nil {
				return err
			}
		}
		if err := pc.Start(f); err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, _ := os.ReadFile(pc.LogPath(f))
			if strings.Contains(string(b), "may have lost its data") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %d came back with an empty data directory and never noticed", f)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return waitAcked(h, 30, 60*time.Second)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPowerLong runs seeded rounds of power cuts across 1, 3 and 5 nodes
// for -power.long (skipped without it). Each round is a new cluster with
// its own seed (base seed + round): some rounds cut every node at once,
// some the leader, some a random minority; a random minority keeps torn
// writes; snapshots are frequent.
func TestPowerLong(t *testing.T) {
	if *powerLong == 0 {
		t.Skip("long power-loss run: enable with -power.long=30m")
	}
	base := seedFor(t)
	end := time.Now().Add(*powerLong)
	var rounds, cuts, torn, puts, pops, failed int
	for r := 0; time.Now().Before(end); r++ {
		seed := base + int64(r)
		nodes := []int{1, 3, 5}[r%3]
		rng := rand.New(rand.NewSource(seed))
		tornNodes := map[int]bool{}
		for i := 0; i < (nodes-1)/2; i++ {
			if rng.Intn(2) == 0 {
				tornNodes[rng.Intn(nodes)] = true
			}
		}
		ok := t.Run(fmt.Sprintf("round=%d/seed=%d/nodes=%d", r, seed, nodes), func(t *testing.T) {
			pc, h, err := runPower(t, bin, nodes, seed, tornNodes, cutRounds(3+rng.Intn(3), func(pc *powerCluster, _ int) []int {
				switch k := pc.rng.Intn(3); {
				case k == 0 || nodes == 1:
					return pc.all()
				case k == 1:
					return []int{leaderOr0(pc)}
				default:
					var out []int
					for _, i := range pc.rng.Perm(nodes)[:(nodes-1)/2] {
						out = append(out, i)
					}
					return out
				}
			}), "--snapshot-entries", "200", "--trailing-entries", "20")
			cuts += pc.cuts()
			for _, fs := range pc.fs {
				torn += fs.Stats().TornKept
			}
			p, q := h.acked()
			puts, pops = puts+p, pops+q
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		})
		rounds++
		if !ok {
			failed++
		}
	}
	t.Logf("long run, base seed %d, %v: %d rounds (%d failed), %d power cuts, %d torn writes kept in part, %d acknowledged puts, %d acknowledged pops",
		base, *powerLong, rounds, failed, cuts, torn, puts, pops)
}
