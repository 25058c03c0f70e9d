// Package proccluster runs a cluster of raftmq brokers as real processes on
// 127.0.0.1 (or wherever a wrapper puts them), and kills, stops, pauses and
// restarts them. The process-level tests (e2e) and the fault-injection suite
// (internal/verify, `raftmq verify`) drive clusters through it. It runs a
// binary it is given; building one is internal/testbin's job, for tests.
package proccluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/config"
)

// Options shape a cluster.
type Options struct {
	Nodes int
	// Args are extra `raftmq serve` flags for every node (e.g. faster ticks).
	Args []string
	// Env is extra environment ("KEY=value") per node index, added to the
	// test's own; SetEnv changes it for the next Start.
	Env map[int][]string
	// Curve turns CURVE on: a key pair per node (secret files under the
	// cluster's dir, public keys in the cluster file) and one client key
	// pair, the only one the brokers admit (ClientSecretPath).
	Curve bool
	// ClusterID is written to the cluster file when set (a cluster whose
	// membership changes needs one: AddNode rewrites the file).
	ClusterID string
}

// Cluster is a set of broker processes sharing one cluster file.
type Cluster struct {
	Bin        string
	Dir        string
	ConfigPath string
	Addrs      []config.Address
	ClusterID  string
	args       []string
	// nodeArgs are extra serve flags of one node (AddNode's --join).
	nodeArgs map[int][]string

	mu    sync.Mutex
	env   map[int][]string // per node, see Options.Env
	procs []*exec.Cmd      // nil when the node is not running
	exits []chan error

	// clientPublic and clientSecret are the client key pair; "" when
	// CURVE is off.
	clientPublic, clientSecret string
}

// NewCluster writes a cluster file with free ports under dir. No node runs
// until Start.
func NewCluster(bin, dir string, opts Options) (*Cluster, error) {
	ports, err := freePorts(2 * opts.Nodes)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Bin: bin, Dir: dir, args: opts.Args, env: map[int][]string{}, ClusterID: opts.ClusterID, nodeArgs: map[int][]string{}}
	for i, env := range opts.Env {
		c.env[i] = append([]string(nil), env...)
	}
	for i := 0; i < opts.Nodes; i++ {
		c.Addrs = append(c.Addrs, config.Address{IP: "127.0.0.1", Port: ports[2*i], InternalPort: ports[2*i+1]})
	}
	if opts.Curve {
		if err := c.makeKeys(); err != nil {
			return nil, err
		}
	}
	c.ConfigPath = filepath.Join(dir, "cluster.json")
	if err := c.WriteClusterFile(); err != nil {
		return nil, err
	}
	c.procs = make([]*exec.Cmd, opts.Nodes)
	c.exits = make([]chan error, opts.Nodes)
	return c, nil
}

// WriteClusterFile (re)writes the cluster file from Addrs.
func (c *Cluster) WriteClusterFile() error {
	b, err := json.MarshalIndent(config.Cluster{Addresses: c.Addrs, ClusterID: c.ClusterID}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.ConfigPath, b, 0o644); err != nil {
		return fmt.Errorf("proccluster: %w", err)
	}
	return nil
}

// AddNode adds a node with free ports to the cluster file (id: its index)
// that starts with extra serve flags (e.g. --join); it does not start it.
func (c *Cluster) AddNode(extra ...string) (int, error) {
	ports, err := freePorts(2)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.Addrs = append(c.Addrs, config.Address{IP: "127.0.0.1", Port: ports[0], InternalPort: ports[1]})
	i := len(c.Addrs) - 1
	c.nodeArgs[i] = append([]string(nil), extra...)
	c.procs = append(c.procs, nil)
	c.exits = append(c.exits, nil)
	c.mu.Unlock()
	return i, c.WriteClusterFile()
}

// makeKeys writes a CURVE key pair per node and the client's, and the
// clients file that admits the client's key.
func (c *Cluster) makeKeys() error {
	for i := range c.Addrs {
		pub, sec, err := zmq.NewCurveKeypair()
		if err != nil {
			return fmt.Errorf("proccluster: CURVE keys: %w", err)
		}
		c.Addrs[i].CurvePublic = pub
		if err := os.WriteFile(c.nodeSecretPath(i), []byte(sec+"\n"), 0o600); err != nil {
			return fmt.Errorf("proccluster: %w", err)
		}
	}
	pub, sec, err := zmq.NewCurveKeypair()
	if err != nil {
		return fmt.Errorf("proccluster: CURVE keys: %w", err)
	}
	c.clientPublic, c.clientSecret = pub, sec
	if err := os.WriteFile(c.ClientSecretPath(), []byte(sec+"\n"), 0o600); err != nil {
		return fmt.Errorf("proccluster: %w", err)
	}
	if err := os.WriteFile(c.clientsPath(), []byte(pub+"\n"), 0o644); err != nil {
		return fmt.Errorf("proccluster: %w", err)
	}
	return nil
}

func (c *Cluster) nodeSecretPath(i int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("node%d.curve-secret", i))
}
func (c *Cluster) clientsPath() string { return filepath.Join(c.Dir, "curve-clients") }

// ClientSecretPath is the client's secret key file (CURVE on), for
// --curve-secret-file.
func (c *Cluster) ClientSecretPath() string { return filepath.Join(c.Dir, "client.curve-secret") }

// Curve reports whether the cluster runs CURVE.
func (c *Cluster) Curve() bool { return c.clientSecret != "" }

// ClientCurve is the client's CURVE setup for the current Addrs; nil when
// CURVE is off.
func (c *Cluster) ClientCurve() *client.Curve {
	if !c.Curve() {
		return nil
	}
	keys := map[string]string{}
	for _, a := range c.Addrs {
		keys[a.ClientAddr()] = a.CurvePublic
	}
	return &client.Curve{PublicKey: c.clientPublic, SecretKey: c.clientSecret, ServerKeys: keys}
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("proccluster: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// DataDir is node i's data directory.
func (c *Cluster) DataDir(i int) string { return filepath.Join(c.Dir, fmt.Sprintf("node%d", i)) }

// LogPath is node i's log file (appended across restarts).
func (c *Cluster) LogPath(i int) string { return filepath.Join(c.Dir, fmt.Sprintf("node%d.log", i)) }

// ClientAddrs are the client addresses of all nodes.
func (c *Cluster) ClientAddrs() []string {
	out := make([]string, len(c.Addrs))
	for i, a := range c.Addrs {
		out[i] = a.ClientAddr()
	}
	return out
}

// StartAll starts every node that is not running.
func (c *Cluster) StartAll() error {
	for i := range c.Addrs {
		if !c.Running(i) {
			if err := c.Start(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// Start starts node i.
func (c *Cluster) Start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[i] != nil {
		return fmt.Errorf("proccluster: node %d already running", i)
	}
	logf, err := os.OpenFile(c.LogPath(i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := append([]string{"serve", "--config", c.ConfigPath, "--id", strconv.Itoa(i),
		"--data-dir", c.DataDir(i), "--log-format", "json"}, c.args...)
	args = append(args, c.nodeArgs[i]...)
	if c.Curve() {
		args = append(args, "--curve-secret-file", c.nodeSecretPath(i), "--curve-clients-file", c.clientsPath())
	}
	cmd := exec.Command(c.Bin, args...)
	if env := c.env[i]; len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("proccluster: start node %d: %w", i, err)
	}
	exit := make(chan error, 1)
	go func() {
		exit <- cmd.Wait()
		logf.Close()
	}()
	c.procs[i], c.exits[i] = cmd, exit
	return nil
}

// SetEnv replaces node i's extra environment from its next Start on.
func (c *Cluster) SetEnv(i int, env []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.env[i] = append([]string(nil), env...)
}

// WaitExit waits up to timeout for node i to exit by itself (a failpoint, a
// fatal error) and returns how it exited: the *exec.ExitError, or nil for
// exit 0. err is set if it is not running or still runs after timeout.
func (c *Cluster) WaitExit(i int, timeout time.Duration) (exitErr, err error) {
	c.mu.Lock()
	p, exit := c.procs[i], c.exits[i]
	c.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("proccluster: node %d is not running", i)
	}
	select {
	case exitErr = <-exit:
	case <-time.After(timeout):
		return nil, fmt.Errorf("proccluster: node %d still runs after %v", i, timeout)
	}
	c.mu.Lock()
	c.procs[i], c.exits[i] = nil, nil
	c.mu.Unlock()
	return exitErr, nil
}

// Running reports whether node i's process was started and not yet reaped.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[i] != nil
}

// Kill sends SIGKILL to node i and waits for it to die.
func (c *Cluster) Kill(i int) error {
	_, err := c.signalAndWait(i, syscall.SIGKILL, 10*time.Second)
	return err
}

// KillAll sends SIGKILL to every running node at once.
func (c *Cluster) KillAll() error {
	c.mu.Lock()
	for _, p := range c.procs {
		if p != nil {
			_ = p.Process.Signal(syscall.SIGCONT) // a paused process must die too
			_ = p.Process.Kill()
		}
	}
	c.mu.Unlock()
	for i := range c.Addrs {
		if c.Running(i) {
			if _, err := c.signalAndWait(i, syscall.SIGKILL, 10*time.Second); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stop sends SIGTERM to node i and waits up to timeout; it returns the
// process's exit error (nil for exit 0) and how long the stop took.
func (c *Cluster) Stop(i int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	exitErr, err := c.signalAndWait(i, syscall.SIGTERM, timeout)
	if err != nil {
		return time.Since(start), err
	}
	return time.Since(start), exitErr
}

func (c *Cluster) signalAndWait(i int, sig syscall.Signal, timeout time.Duration) (exitErr, err error) {
	c.mu.Lock()
	p, exit := c.procs[i], c.exits[i]
	c.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("proccluster: node %d is not running", i)
	}
	if err := p.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return nil, fmt.Errorf("proccluster: signal node %d: %w", i, err)
	}
	select {
	case exitErr = <-exit:
	case <-time.After(timeout):
		_ = p.Process.Kill()
		<-exit
		err = fmt.Errorf("proccluster: node %d did not exit within %v of %v", i, timeout, sig)
	}
	c.mu.Lock()
	c.procs[i], c.exits[i] = nil, nil
	c.mu.Unlock()
	return exitErr, err
}

// Pause stops node i with SIGSTOP; Resume continues it.
func (c *Cluster) Pause(i int) error  { return c.signal(i, syscall.SIGSTOP) }
func (c *Cluster) Resume(i int) error { return c.signal(i, syscall.SIGCONT) }

func (c *Cluster) signal(i int, sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[i] == nil {
		return fmt.Errorf("proccluster: node %d is not running", i)
	}
	return c.procs[i].Process.Signal(sig)
}

// Close kills every node.
func (c *Cluster) Close() error { return c.KillAll() }

// Client returns a client that knows every node (through CURVE when the
// cluster runs it).
func (c *Cluster) Client(opts client.Options) (*client.Client, error) {
	opts.Servers = c.ClientAddrs()
	opts.Curve = c.ClientCurve()
	return client.New(opts)
}

// Status asks node i directly (no redirect), bounded by timeout.
func (c *Cluster) Status(i int, timeout time.Duration) (wire.Status, error) {
	cl, err := client.New(client.Options{Servers: []string{c.Addrs[i].ClientAddr()}, Timeout: timeout, AttemptTimeout: timeout, Curve: c.ClientCurve()})
	if err != nil {
		return wire.Status{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return cl.Status(ctx, c.Addrs[i].ClientAddr())
}

// WaitLeader polls the running nodes until exactly one of those in the
// highest term reports itself leader and a majority agree on its term, and
// returns its index and term.
func (c *Cluster) WaitLeader(timeout time.Duration) (int, uint64, error) {
	return c.WaitLeaderOf(nil, timeout)
}

// WaitLeaderOf is WaitLeader among members only (nil: every node), for a
// cluster whose membership changed: the majority is of the members.
func (c *Cluster) WaitLeaderOf(members []int, timeout time.Duration) (int, uint64, error) {
	if members == nil {
		for i := range c.Addrs {
			members = append(members, i)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		leader, term, ok := c.leaderNow(members)
		if ok {
			return leader, term, nil
		}
		if time.Now().After(deadline) {
			return -1, 0, fmt.Errorf("proccluster: no leader within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) leaderNow(members []int) (int, uint64, bool) {
	var sts []wire.Status
	for _, i := range members {
		if !c.Running(i) {
			continue
		}
		if st, err := c.Status(i, 300*time.Millisecond); err == nil {
			sts = append(sts, st)
		}
	}
	leader, term := -1, uint64(0)
	for _, st := range sts {
		if st.Role == "Leader" && st.Term >= term {
			leader, term = st.ID, st.Term
		}
	}
	agree := 0
	for _, st := range sts {
		if st.Term == term && st.LeaderID != nil && *st.LeaderID == leader {
			agree++
		}
	}
	return leader, term, leader >= 0 && agree > len(members)/2
}

// Pid is node i's process id, or 0 when it is not running.
func (c *Cluster) Pid(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[i] == nil {
		return 0
	}
	return c.procs[i].Process.Pid
}

// RSS is node i's resident set size in bytes, from /proc.
func (c *Cluster) RSS(i int) (int64, error) {
	pid := c.Pid(i)
	if pid == 0 {
		return 0, fmt.Errorf("e2e: node %d is not running", i)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("e2e: node %d: %w", i, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("e2e: node %d: VmRSS %q: %w", i, rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("e2e: node %d: no VmRSS in /proc/%d/status", i, pid)
}
