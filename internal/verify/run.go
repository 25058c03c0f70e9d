package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/raftmq/raftmq/internal/powerfs"
	"github.com/raftmq/raftmq/internal/proccluster"
)

// Config is one run of the suite.
type Config struct {
	Bin      string        // the raftmq binary to run as brokers
	Nodes    int           // 3 or 5
	Duration time.Duration // workload under faults, before healing
	Seed     uint64
	Families []string // fault families (AllFamilies when empty)
	// Dir receives the cluster's data dirs and logs, the report and, on a
	// linearizability violation, the HTML visualization.
	Dir      string
	Workload WorkloadConfig
	// Lease adds leased consumers on topics of their own (Consumers 0: none).
	Lease   LeaseConfig
	Nemesis NemesisConfig
	// BrokerArgs are extra `raftmq serve` flags (after brokerArgs).
	BrokerArgs []string
	// LinearTimeout bounds the linearizability search per topic.
	LinearTimeout time.Duration
	// Loopback runs on 127.0.0.1 without namespaces (network families are
	// then skipped).
	Loopback bool
	// Curve runs the brokers with CURVE on both ports; the workload and the
	// checks connect with the cluster's client key.
	Curve bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// brokerArgs make elections quick (150–300 ms) and snapshots frequent, so
// a short run crosses many terms and installs snapshots on lagging nodes.
var brokerArgs = []string{
	"--tick-interval", "10ms", "--election-ticks", "15", "--heartbeat-ticks", "2",
	"--request-timeout", "2s", "--shutdown-timeout", "3s",
	"--snapshot-entries", "500", "--trailing-entries", "100",
}

// DefaultConfig is a 3-node, 30-second run of every family.
func DefaultConfig() Config {
	return Config{
		Nodes:         3,
		Duration:      30 * time.Second,
		Seed:          1,
		Families:      AllFamilies,
		Workload:      WorkloadConfig{Producers: 6, Consumers: 5, Topics: 16, OpsPerTopic: 120, DropPct: 5, ThinkMax: 20 * time.Millisecond},
		Lease:         LeaseConfig{Producers: 2, Consumers: 4, Topics: 2, LeaseMs: 300, MaxDeliveries: 3},
		Nemesis:       NemesisConfig{QuietMin: 500 * time.Millisecond, QuietMax: 2 * time.Second, HoldMin: time.Second, HoldMax: 4 * time.Second},
		LinearTimeout: 20 * time.Second,
	}
}

// Validate checks cfg and fills Families and LinearTimeout when unset.
func (cfg *Config) Validate() error {
	switch {
	case cfg.Bin == "":
		return fmt.Errorf("%w: no broker binary", ErrConfig)
	case cfg.Nodes < 3 || cfg.Nodes > 7:
		return fmt.Errorf("%w: nodes %d, want 3..7", ErrConfig, cfg.Nodes)
	case cfg.Duration <= 0:
		return fmt.Errorf("%w: duration %v", ErrConfig, cfg.Duration)
	case cfg.Dir == "":
		return fmt.Errorf("%w: no output dir", ErrConfig)
	case cfg.Workload.Topics < 1 || cfg.Workload.Producers < 1 || cfg.Workload.Consumers < 1 || cfg.Workload.OpsPerTopic < 1:
		return fmt.Errorf("%w: workload %+v", ErrConfig, cfg.Workload)
	}
	if len(cfg.Families) == 0 {
		cfg.Families = AllFamilies
	}
	for _, f := range cfg.Families {
		if _, ok := familyFaults[f]; !ok {
			return fmt.Errorf("%w: unknown fault family %q (known: %s)", ErrConfig, f, strings.Join(AllFamilies, ","))
		}
	}
	if cfg.LinearTimeout <= 0 {
		cfg.LinearTimeout = 20 * time.Second
	}
	return nil
}

// ReplayCommand is the command line that reruns cfg's schedule.
func (cfg Config) ReplayCommand() string {
	curve := ""
	if cfg.Curve {
		curve = " --curve"
	}
	return fmt.Sprintf("raftmq verify --nodes %d --duration %s --seed %d --faults %s%s",
		cfg.Nodes, cfg.Duration, cfg.Seed, strings.Join(cfg.Families, ","), curve)
}

// Run runs the suite once: execute, then check. The error is for a run that
// could not be carried out (no leader ever, a node that cannot start);
// violations are in the Report (Report.OK).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	r, err := execute(ctx, cfg)
	if r == nil {
		return nil, err
	}
	defer r.close()
	if err != nil {
		return r.rep, err
	}
	return r.check(r.ops), nil
}

// round is one executed round, its cluster still up, waiting for its checks.
type round struct {
	cfg   Config
	rep   *Report
	c     *proccluster.Cluster
	disks []*powerfs.FS // the nodes' power-cut filesystems, if any
	nw    *Network
	nem   *nemesis
	wl    *workload
	lw    *leaseWorkload // nil without leased consumers
	ops   []Op
	logf  func(format string, args ...any)
}

// inspectDirs returns each node's data directory for the final checks,
// which open the bbolt files in this process, once every broker is stopped.
// Under the power-cut family this process serves the disks, and a process
// must not mmap files through a FUSE mount it serves (a page fault during a
// stop-the-world hangs it), so the disks are unmounted first and the
// backing directories, which hold every write, are inspected instead.
func (r *round) inspectDirs() []string {
	dirs := make([]string, len(r.c.Addrs))
	for i := range dirs {
		dirs[i] = r.c.DataDir(i)
	}
	if len(r.disks) > 0 {
		unmountDisks(r.disks)
		r.disks = nil
		for i := range dirs {
			dirs[i] = backingDir(r.c, i)
		}
	}
	return dirs
}

// close stops the brokers, unmounts their filesystems and removes the
// namespaces.
func (r *round) close() {
	if r.c != nil {
		r.c.Close()
	}
	unmountDisks(r.disks) // after the brokers are dead
	if r.nw != nil {
		r.nw.Close()
	}
}

// execute starts the cluster, runs the workload under faults, heals and
// drains. The returned round (nil only for an invalid cfg) must be closed.
func execute(ctx context.Context, cfg Config) (*round, error) {
	return executeWith(ctx, cfg, nil)
}

// executeWith is execute with a hook that sees the nemesis before it
// starts (tests only: execute passes nil).
func executeWith(ctx context.Context, cfg Config, hook func(*nemesis)) (*round, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "chaos: "+format+"\n", args...)
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	rep := &Report{Seed: cfg.Seed, Nodes: cfg.Nodes, Duration: cfg.Duration, Dir: cfg.Dir, Replay: cfg.ReplayCommand(), Started: time.Now()}
	r := &round{cfg: cfg, rep: rep, logf: logf}

	// A node the membership family adds has no namespace: such a round
	// runs on loopback.
	membership := slices.Contains(cfg.Families, FamilyMembership) && !cfg.Curve
	var nw *Network
	if !cfg.Loopback && !membership {
		var err error
		nw, err = NewNetwork(cfg.Nodes)
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("network faults skipped: %v", err))
			logf("network faults skipped: %v", err)
		} else {
			r.nw = nw
		}
	}
	rep.Network = "loopback 127.0.0.1"
	if nw != nil {
		rep.Network = fmt.Sprintf("network namespaces, nodes %v, clients from %s", nw.IPs, nw.HostIP)
	}
	for _, f := range cfg.Families {
		switch {
		case netFamilies[f] && nw == nil && membership:
			rep.Skipped = append(rep.Skipped, f+" (the membership family runs on loopback: an added node has no namespace)")
		case netFamilies[f] && nw == nil:
			rep.Skipped = append(rep.Skipped, f+" (no network namespaces)")
		case f == FamilyMembership && cfg.Curve:
			rep.Skipped = append(rep.Skipped, f+" (CURVE: an added node's key is in no member's cluster file)")
		case f == FamilyPowerCut && powerfs.Available() != nil:
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s (%v)", f, powerfs.Available()))
		case f == FamilyDelay && !nw.Netem:
			rep.Skipped = append(rep.Skipped, f+" (tc netem is not available in this kernel)")
		default:
			rep.Families = append(rep.Families, f)
		}
	}
	for _, s := range rep.Skipped {
		logf("skipping fault family %s", s)
	}

	c, disks, err := startCluster(cfg, nw, slices.Contains(rep.Families, FamilyPowerCut), membership, logf)
	if err != nil {
		return r, err
	}
	r.c, r.disks = c, disks
	if _, _, err := c.WaitLeader(20 * time.Second); err != nil {
		return r, fmt.Errorf("chaos: initial election: %w", err)
	}
	logf("seed %d: %d nodes up (%s), families %v, %v of faults", cfg.Seed, cfg.Nodes, rep.Network, rep.Families, cfg.Duration)

	hist := newHistory()
	wl := newWorkload(cfg.Workload, c.ClientAddrs(), cfg.Seed, hist)
	wl.curve = c.ClientCurve()
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = wl.setup(setupCtx)
	cancel()
	if err != nil {
		return r, err
	}
	r.wl = wl
	if cfg.Lease.Consumers > 0 {
		lw := newLeaseWorkload(cfg.Lease, wl)
		setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = lw.setup(setupCtx)
		cancel()
		if err != nil {
			return r, err
		}
		r.lw = lw
	}

	ncfg := cfg.Nemesis
	ncfg.Families = rep.Families
	nem := newNemesis(ncfg, c, nw, cfg.Seed, hist)
	nem.disks = disks
	nem.logf = logf
	if hook != nil {
		hook(nem)
	}
	r.nem = nem
	phase, cancel := context.WithTimeout(ctx, cfg.Duration)
	nemDone := make(chan struct{})
	go func() {
		defer close(nemDone)
		nem.run(phase)
	}()
	leaseDone := make(chan struct{})
	go func() {
		defer close(leaseDone)
		if r.lw != nil {
			r.lw.run(phase)
		}
	}()
	wl.run(phase)
	<-leaseDone
	<-nemDone
	cancel()

	rep.HealNotes = nem.healAll()
	logf("healed; waiting for a leader")
	if _, _, err := c.WaitLeaderOf(nem.voters(), 30*time.Second); err != nil {
		rep.Errors = append(rep.Errors, fmt.Sprintf("no leader 30 s after healing: %v", err))
	}
	resolveCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	rep.Ops.Unresolved = wl.resolve(resolveCtx)
	cancel()
	logf("draining %d topics", len(wl.topics))
	drainCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	if err := wl.drain(drainCtx, 4); err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	if r.lw != nil {
		logf("draining %d lease topics and their dead-letter topics", cfg.Lease.Topics)
		if err := r.lw.drain(drainCtx); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
	}
	cancel()
	if err := ctx.Err(); err != nil {
		// Interrupted: the drain is incomplete, so the checkers would
		// report the undrained messages as lost.
		rep.Errors = append(rep.Errors, "interrupted before the checks: "+err.Error())
		rep.Elapsed = time.Since(rep.Started)
		return r, fmt.Errorf("chaos: interrupted: %w", err)
	}
	r.ops = hist.snapshot()
	return r, nil
}

// check runs every checker over the history ops (the round's own, or one a
// test altered) and the cluster's final state, and saves the report.
func (r *round) check(ops []Op) *Report {
	cfg, rep, c, wl, logf := r.cfg, r.rep, r.c, r.wl, r.logf
	rep.Events = r.nem.eventLog()
	for _, ev := range rep.Events {
		if ev.Err != "" {
			rep.Errors = append(rep.Errors, fmt.Sprintf("fault %s at %.3fs did not inject or heal cleanly: %s", ev.Fault, ev.Start.Seconds(), ev.Err))
		}
	}
	rep.Ops.count(ops)
	rep.Topics = len(wl.topics)
	logf("checking %d operations", len(ops))
	rep.Linear = checkLinear(ops, cfg.LinearTimeout, cfg.Dir)
	rep.Queue = checkQueue(ops)
	rep.MinorityAcks = checkMinorityAcks(ops, rep.Events)
	if r.lw != nil {
		lr := checkLeases(r.lw.hist.snapshot(), cfg.Lease.MaxDeliveries)
		rep.Lease = &lr
	}
	rep.RetryMismatches = wl.retryMismatches()
	rep.Node = checkNodes(c, r.nem.voters(), 30*time.Second, r.inspectDirs)
	rep.Crashes = scanLogs(c, r.nem.removedNodes())
	if err := writeHistory(filepath.Join(cfg.Dir, "history.jsonl"), ops); err != nil {
		rep.Notes = append(rep.Notes, err.Error())
	}
	rep.Elapsed = time.Since(rep.Started)
	if err := rep.save(cfg.Dir); err != nil {
		rep.Notes = append(rep.Notes, err.Error())
	}
	return rep
}

// startCluster starts the brokers, inside the namespaces when nw is set,
// each data directory on a power-cut filesystem when power is set.
// Membership changes need an explicit cluster id (decision 22): with
// membership set the cluster file has one.
func startCluster(cfg Config, nw *Network, power, membership bool, logf func(string, ...any)) (*proccluster.Cluster, []*powerfs.FS, error) {
	args := append(slices.Clone(brokerArgs), cfg.BrokerArgs...)
	opts := proccluster.Options{Nodes: cfg.Nodes, Args: args, Curve: cfg.Curve}
	if membership {
		opts.ClusterID = fmt.Sprintf("verify-%d", cfg.Seed)
	}
	c, err := proccluster.NewCluster(cfg.Bin, cfg.Dir, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("chaos: %w", err)
	}
	var disks []*powerfs.FS
	if power {
		if disks, err = mountDisks(c, cfg.Seed, logf); err != nil {
			return nil, nil, err
		}
	}
	fail := func(err error) (*proccluster.Cluster, []*powerfs.FS, error) {
		c.Close()
		unmountDisks(disks)
		return nil, nil, err
	}
	if nw != nil {
		for i := range c.Addrs {
			c.Addrs[i].IP = nw.IPs[i]
		}
		if err := c.WriteClusterFile(); err != nil {
			return fail(fmt.Errorf("chaos: %w", err))
		}
		if c.Bin, err = nw.WrapBinary(cfg.Dir, cfg.Bin); err != nil {
			return fail(err)
		}
	}
	if err := c.StartAll(); err != nil {
		return fail(fmt.Errorf("chaos: %w", err))
	}
	return c, disks, nil
}

// scanLogs looks for broker crashes in the node logs. A node in removed
// stopped because it was removed: that stop is not a crash.
func scanLogs(c *proccluster.Cluster, removed map[int]bool) []string {
	var out []string
	for i := range c.Addrs {
		b, err := os.ReadFile(c.LogPath(i))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") || strings.Contains(line, `"level":"fatal"`) ||
				strings.HasPrefix(line, "WARNING: DATA RACE") || (strings.Contains(line, `"level":"error"`) && strings.Contains(line, "node stopped")) {
				if removed[i] && strings.Contains(line, "removed from the cluster") {
					continue
				}
				out = append(out, fmt.Sprintf("node %d (%s): %s", i, c.LogPath(i), truncate(line, 300)))
			}
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func writeHistory(path string, ops []Op) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chaos: history: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, op := range ops {
		if err := enc.Encode(op); err != nil {
			f.Close()
			return fmt.Errorf("chaos: history: %w", err)
		}
	}
	return f.Close()
}
