package verify

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testbin"
)

var (
	longFlag  = flag.Duration("chaos.long", 0, "run the long suite (rounds of mixed faults) for this long, e.g. 30m")
	roundFlag = flag.Duration("chaos.round", 2*time.Minute, "fault phase of one long-suite round")
	seedFlag  = flag.Uint64("chaos.seed", 0, "long suite: first seed (0 = from the clock, printed)")
	outFlag   = flag.String("chaos.out", "", "long suite: directory for run dirs and summary.txt (default: a temp dir, kept)")
	raceFlag  = flag.Bool("chaos.race", false, "build the brokers with the race detector")
	keepFlag  = flag.Bool("chaos.keep", false, "keep the run dirs of passing runs")
	curveFlag = flag.Bool("chaos.curve", false, "run every suite with CURVE on both ports")
)

// bin is the raftmq binary built once for this package's tests.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // the checker tests need no brokers
	}
	dir, err := os.MkdirTemp("", "raftmq-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err = testbin.Build(dir, *raceFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runDir is where a run keeps its files: under the test's temp dir, or a
// kept dir when the run fails (so the logs and visualization survive).
func runDir(t *testing.T, name string) string {
	t.Helper()
	if *keepFlag {
		d, err := os.MkdirTemp("", "raftmq-chaos-"+name+"-")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	return filepath.Join(t.TempDir(), name)
}

// keepOnFailure copies nothing: it moves a failed run's dir out of the
// test's temp dir so it is not deleted.
func keepOnFailure(t *testing.T, rep *Report) {
	if rep == nil || rep.OK() || *keepFlag {
		return
	}
	dst, err := os.MkdirTemp("", "raftmq-chaos-failed-")
	if err != nil {
		return
	}
	if err := os.Rename(rep.Dir, filepath.Join(dst, "run")); err == nil {
		t.Logf("failed run kept in %s", filepath.Join(dst, "run"))
	}
}

func runOnce(t *testing.T, cfg Config) *Report {
	t.Helper()
	var log strings.Builder
	cfg.Log = &log
	rep, err := Run(context.Background(), cfg)
	var sum strings.Builder
	if rep != nil {
		rep.WriteText(&sum)
	}
	if err != nil {
		t.Fatalf("seed %d: run failed: %v\n%s\n%s", cfg.Seed, err, log.String(), sum.String())
	}
	if !rep.OK() {
		keepOnFailure(t, rep)
		t.Errorf("seed %d: violations (replay: %s):\n%s\nprogress:\n%s", cfg.Seed, rep.Replay, sum.String(), log.String())
	} else {
		t.Logf("seed %d (curve %v): %d ops (%d acked, %d unknown), %d faults, linearizable %d/%d topics",
			cfg.Seed, cfg.Curve, rep.Ops.Attempted, rep.Ops.Acked, rep.Ops.Unknown, len(rep.Events), rep.Linear.Ok, rep.Linear.Topics)
		if l := rep.Lease; l != nil {
			t.Logf("seed %d: leased delivery: %d puts acked, %d receives, %d acked, %d dead-lettered, %d stale receipts refused",
				cfg.Seed, l.Puts, l.Receives, l.Acked, l.DeadLettered, l.StaleRefused)
		}
	}
	return rep
}

// TestShortSuite runs each fault family on its own for a few seconds, on
// 3 and 5 nodes, plus a mixed run. Network families are skipped (with a
// message) where namespaces cannot be made.
func TestShortSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite: skipped in -short mode")
	}
	tests := []struct {
		name     string
		nodes    int
		families []string
		seed     uint64
		duration time.Duration
	}{
		{"kill-3", 3, []string{FamilyKill}, 101, 8 * time.Second},
		{"kill-5", 5, []string{FamilyKill}, 102, 8 * time.Second},
		{"pause-3", 3, []string{FamilyPause}, 201, 8 * time.Second},
		{"pause-5", 5, []string{FamilyPause}, 202, 8 * time.Second},
		{"partition-3", 3, []string{FamilyPartition}, 303, 8 * time.Second},
		{"partition-5", 5, []string{FamilyPartition}, 304, 8 * time.Second},
		{"loss-3", 3, []string{FamilyLoss}, 405, 8 * time.Second},
		{"combo-5", 5, []string{FamilyCombo}, 506, 8 * time.Second},
		{"membership-3", 3, []string{FamilyMembership}, 709, 8 * time.Second},
		{"mixed-3", 3, AllFamilies, 607, 10 * time.Second},
		{"mixed-5", 5, AllFamilies, 608, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Bin, cfg.Nodes, cfg.Families, cfg.Seed, cfg.Duration = bin, tt.nodes, tt.families, tt.seed, tt.duration
			cfg.Curve = *curveFlag
			// Shorter gaps and holds than the default: more faults per
			// second, each still longer than an election timeout.
			cfg.Nemesis = NemesisConfig{QuietMin: 300 * time.Millisecond, QuietMax: 1200 * time.Millisecond, HoldMin: 800 * time.Millisecond, HoldMax: 2500 * time.Millisecond}
			cfg.Dir = runDir(t, tt.name)
			rep := runOnce(t, cfg)
			if rep != nil && len(rep.Families) > 0 && len(rep.Events) == 0 {
				t.Errorf("seed %d: no fault was injected in %v", tt.seed, tt.duration)
			}
			if rep != nil && slices.Contains(rep.Families, FamilyMembership) {
				checkReplaced(t, tt.seed, tt.nodes, rep)
			}
			for _, s := range rep.Skipped {
				t.Logf("skipped fault family %s", s)
			}
		})
	}
}

// TestCurveSuite runs the mixed rounds of the short suite (every fault
// family) with CURVE on both ports: keys, handshakes and the ZAP handler
// must survive kills, pauses, partitions and loss like the rest. The whole
// short suite runs with CURVE under -chaos.curve.
func TestCurveSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite: skipped in -short mode")
	}
	for _, tt := range []struct {
		name  string
		nodes int
		seed  uint64
	}{{"mixed-3", 3, 2007}, {"mixed-5", 5, 2008}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Bin, cfg.Nodes, cfg.Families, cfg.Seed, cfg.Duration, cfg.Curve = bin, tt.nodes, AllFamilies, tt.seed, 10*time.Second, true
			cfg.Nemesis = NemesisConfig{QuietMin: 300 * time.Millisecond, QuietMax: 1200 * time.Millisecond, HoldMin: 800 * time.Millisecond, HoldMax: 2500 * time.Millisecond}
			cfg.Dir = runDir(t, "curve-"+tt.name)
			rep := runOnce(t, cfg)
			if rep != nil && len(rep.Events) == 0 {
				t.Errorf("seed %d: no fault was injected", tt.seed)
			}
			if rep != nil && rep.Ops.Acked == 0 {
				t.Errorf("seed %d: no operation acknowledged: the workload never got through CURVE", tt.seed)
			}
			// The cluster's own traffic is never refused: a refusal line
			// here means CURVE turned away a member or the workload. A
			// connection that closed mid-handshake is logged too (that is
			// how a plaintext peer often ends), and the workload does that
			// when it gives up on a restarting broker: not a refusal.
			if rep != nil {
				logs, _ := filepath.Glob(filepath.Join(rep.Dir, "node*.log"))
				for _, l := range logs {
					b, err := os.ReadFile(l)
					if err != nil {
						t.Fatal(err)
					}
					for _, line := range strings.Split(string(b), "\n") {
						if strings.Contains(line, "CURVE authentication failed") && !strings.Contains(line, "closed during the CURVE handshake") {
							t.Errorf("seed %d: %s: %s", tt.seed, filepath.Base(l), line)
						}
					}
				}
				if len(logs) == 0 {
					t.Errorf("seed %d: no node logs in %s", tt.seed, rep.Dir)
				}
			}
			for _, s := range rep.Skipped {
				t.Logf("skipped fault family %s", s)
			}
		})
	}
}

// checkReplaced fails unless every membership event replaced a member and
// the final members are not the ones the run started with.
func checkReplaced(t *testing.T, seed uint64, nodes int, rep *Report) {
	t.Helper()
	replaced := 0
	for _, ev := range rep.Events {
		if strings.HasPrefix(ev.Fault, "member-replace") && ev.Err == "" {
			replaced++
			t.Logf("seed %d: %s", seed, ev)
		}
	}
	if replaced == 0 {
		t.Errorf("seed %d: the membership family replaced no member", seed)
	}
	if len(rep.Node.Status) != nodes {
		t.Errorf("seed %d: %d members at the end, want %d", seed, len(rep.Node.Status), nodes)
	}
	for _, st := range rep.Node.Status {
		if st.ID >= nodes {
			return // an added node is a member
		}
	}
	t.Errorf("seed %d: after %d replacements the members are still the first %d nodes", seed, replaced, nodes)
}

// TestMembershipFamilyMustChange: a membership family whose `raftmq member`
// commands do nothing (seed 711) fails its round: the nemesis checks the
// cluster's voters after each change.
func TestMembershipFamilyMustChange(t *testing.T) {
	if testing.Short() {
		t.Skip("needs brokers")
	}
	cfg := DefaultConfig()
	cfg.Bin, cfg.Seed, cfg.Duration, cfg.Families = bin, 711, 2*time.Second, []string{FamilyMembership}
	cfg.Workload.Producers, cfg.Workload.Consumers, cfg.Lease.Consumers = 2, 2, 0
	cfg.Nemesis = NemesisConfig{QuietMin: 100 * time.Millisecond, QuietMax: 200 * time.Millisecond, HoldMin: time.Second, HoldMax: time.Second}
	cfg.Dir = runDir(t, "membership-noop")
	noop := func(context.Context, ...string) (string, error) { return "", nil }
	r, err := executeWith(context.Background(), cfg, func(n *nemesis) { n.memberCmd = noop })
	if r != nil {
		defer r.close()
	}
	if err != nil {
		t.Fatal(err)
	}
	rep := r.check(r.ops)
	var sum strings.Builder
	rep.WriteText(&sum)
	if rep.OK() || !strings.Contains(sum.String(), "membership did not change") {
		t.Fatalf("seed 711: member commands that do nothing were not reported:\n%s", sum.String())
	}
}

// TestRunFindsSabotage: on a real run without faults, a history that
// claims an acknowledged put nobody popped, and a pop of a message nobody
// sent, fails the linearizability and total-queue checks, and the failing
// topic's visualization is written next to the run.
func TestRunFindsSabotage(t *testing.T) {
	if testing.Short() {
		t.Skip("needs brokers")
	}
	cfg := DefaultConfig()
	cfg.Bin, cfg.Seed, cfg.Duration, cfg.Families, cfg.Loopback = bin, 7, 2*time.Second, []string{FamilyKill}, true
	cfg.Nemesis.QuietMin = time.Hour // no fault: only the sabotage may fail the run
	cfg.Dir = runDir(t, "sabotage")
	r, err := execute(context.Background(), cfg)
	if r != nil {
		defer r.close()
	}
	if err != nil {
		t.Fatal(err)
	}
	// Between the phases, the history gains an acknowledged put nobody
	// popped and a pop of a message nobody sent.
	ops := r.ops
	end := ops[len(ops)-1].Return
	// A topic with an acknowledged pop, so the ghost put (acknowledged
	// after every other operation) is a lost suffix whatever the machine's
	// speed let the workload do; on a topic with no pop it would count as
	// a lost prefix.
	topic := ops[0].Topic
	for _, op := range ops {
		if op.Kind == OpPop && op.Status == StatusOK {
			topic = op.Topic
		}
	}
	ops = append(ops,
		Op{ID: len(ops), Client: 0, Kind: OpPut, Topic: topic, Value: "ghost-ack", Call: end + 1, Return: end + 2, Status: StatusOK, Node: 0},
		Op{ID: len(ops) + 1, Client: 1, Kind: OpPop, Topic: topic, Value: "never-sent", Call: end + 3, Return: end + 4, Status: StatusOK, Node: 0})
	rep := r.check(ops)
	if rep.OK() || rep.Queue.LostSuffix != 1 || rep.Queue.NeverSent != 1 || len(rep.Linear.Illegal) != 1 {
		var sum strings.Builder
		rep.WriteText(&sum)
		t.Fatalf("sabotage not reported as one lost suffix message, one never-sent, one illegal topic:\n%s", sum.String())
	}
	if _, err := os.Stat(rep.Linear.Visualization); err != nil {
		t.Fatalf("visualization: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, "summary.txt")); err != nil {
		t.Fatalf("summary: %v", err)
	}
}

// TestLongSuite runs rounds of mixed faults, alternating 3 and 5 nodes,
// for -chaos.long (skipped without it), and writes a summary a person can
// read to -chaos.out/summary.txt.
func TestLongSuite(t *testing.T) {
	if *longFlag <= 0 {
		t.Skip("long chaos suite: run with -chaos.long=30m (and -timeout above it)")
	}
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano()%1_000_000) + 1
	}
	out := *outFlag
	if out == "" {
		d, err := os.MkdirTemp("", "raftmq-chaos-long-")
		if err != nil {
			t.Fatal(err)
		}
		out = d
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(out, "summary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := DefaultConfig()
	cfg.Bin, cfg.Dir, cfg.Seed, cfg.Duration = bin, out, seed, *roundFlag
	t.Logf("long suite: first seed %d, rounds of %v for %v, summary %s", seed, *roundFlag, *longFlag, f.Name())
	totals, err := RunSeries(context.Background(), SeriesConfig{Base: cfg, Until: *longFlag, AlternateNodes: true}, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rounds, %d faults, %d ops (%d acked, %d unknown); summary %s", totals.Rounds, totals.Faults, totals.Ops, totals.Acked, totals.Unknown, f.Name())
	if totals.Failed+totals.Errors > 0 {
		t.Errorf("rounds with violations or errors: seeds %v (see %s)", totals.FailedSeeds, f.Name())
	}
}
