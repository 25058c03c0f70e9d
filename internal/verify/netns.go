package verify

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Names of everything a Network creates start with netPrefix followed by the
// creating process's pid in hex, so a later run can remove what a crashed
// run left behind (its pid is gone) without touching a live run's.
const netPrefix = "rmqc"

// subnetBase is the /16 the per-run /24s are carved from.
const subnetBase = "10.213"

var netCounter atomic.Uint32

// Network is one run's namespaces: a switch namespace holding a bridge, one
// namespace per node with one veth to the bridge, and a veth from the host
// namespace (where the workload's clients run) to the bridge. Partitions and
// loss are iptables rules in each node's namespace; traffic between a node
// and the host (client traffic) is never dropped.
type Network struct {
	token  string // name prefix of this run's namespaces and links
	nodes  int
	HostIP string
	IPs    []string // node i's address
	subnet string   // "10.213.X"
	// Netem is true when tc netem works here (delay faults need it).
	Netem bool

	mu     sync.Mutex
	cut    map[[2]int]bool // blocked peer links, key (low, high)
	lossPc int             // current peer packet loss, percent
	delay  bool
}

// NewNetwork builds the namespaces for n nodes, or returns an error
// wrapping ErrNoNetns when this machine cannot (not root, tools missing).
func NewNetwork(n int) (*Network, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: not running as root", ErrNoNetns)
	}
	for _, tool := range []string{"ip", "iptables", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%w: %s not found (apt-get install iproute2 iptables)", ErrNoNetns, tool)
		}
	}
	removeStaleNetworks()
	x, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	nw := &Network{
		token:  fmt.Sprintf("%s%x%c", netPrefix, os.Getpid(), 'a'+rune(netCounter.Add(1)%26)),
		nodes:  n,
		subnet: fmt.Sprintf("%s.%d", subnetBase, x),
	}
	nw.HostIP = nw.subnet + ".1"
	for i := 0; i < n; i++ {
		nw.IPs = append(nw.IPs, fmt.Sprintf("%s.%d", nw.subnet, 10+i))
	}
	if err := nw.setup(); err != nil {
		nw.Close()
		return nil, fmt.Errorf("%w: %w", ErrNoNetns, err)
	}
	return nw, nil
}

func (nw *Network) switchNS() string { return nw.token + "-sw" }
func (nw *Network) hostLink() string { return nw.token + "-h" }

// NodeNS is node i's namespace.
func (nw *Network) NodeNS(i int) string { return fmt.Sprintf("%s-n%d", nw.token, i) }

func (nw *Network) setup() error {
	sw := nw.switchNS()
	steps := [][]string{
		{"netns", "add", sw},
		{"-n", sw, "link", "set", "lo", "up"},
		{"-n", sw, "link", "add", "br0", "type", "bridge"},
		{"-n", sw, "link", "set", "br0", "up"},
		{"link", "add", nw.hostLink(), "type", "veth", "peer", "name", "ph", "netns", sw},
		{"-n", sw, "link", "set", "ph", "master", "br0", "up"},
		{"addr", "add", nw.HostIP + "/24", "dev", nw.hostLink()},
		{"link", "set", nw.hostLink(), "up"},
	}
	for i := 0; i < nw.nodes; i++ {
		ns, port := nw.NodeNS(i), fmt.Sprintf("p%d", i)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", sw},
			[]string{"-n", sw, "link", "set", port, "master", "br0", "up"},
			[]string{"-n", ns, "addr", "add", nw.IPs[i] + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
		)
	}
	for _, s := range steps {
		if err := run("ip", s...); err != nil {
			return err
		}
	}
	for i := 0; i < nw.nodes; i++ {
		for _, s := range [][]string{
			{"-N", "CHAOS_IN"}, {"-N", "CHAOS_OUT"},
			{"-I", "INPUT", "-j", "CHAOS_IN"}, {"-I", "OUTPUT", "-j", "CHAOS_OUT"},
		} {
			if err := run("ip", append([]string{"netns", "exec", nw.NodeNS(i), "iptables"}, s...)...); err != nil {
				return err
			}
		}
	}
	// netem is a kernel module that is often missing; probe it once.
	nw.Netem = run("ip", "netns", "exec", nw.NodeNS(0), "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "1ms") == nil
	if nw.Netem {
		_ = run("ip", "netns", "exec", nw.NodeNS(0), "tc", "qdisc", "del", "dev", "eth0", "root")
	}
	return nil
}

// Cut blocks the given peer links (both directions), replacing any earlier
// cut; nil heals every link.
func (nw *Network) Cut(links [][2]int) error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.cut = map[[2]int]bool{}
	for _, l := range links {
		nw.cut[linkKey(l[0], l[1])] = true
	}
	return nw.applyLocked()
}

func linkKey(i, j int) [2]int {
	if i > j {
		i, j = j, i
	}
	return [2]int{i, j}
}

// Loss drops pct percent of peer packets arriving at every node.
func (nw *Network) Loss(pct int) error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.lossPc = pct
	return nw.applyLocked()
}

// Delay adds latency (with jitter) to every node's outgoing packets; it
// needs netem.
func (nw *Network) Delay(on bool) error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if !nw.Netem {
		return fmt.Errorf("%w: tc netem is not available in this kernel", ErrNoNetns)
	}
	if on == nw.delay {
		return nil
	}
	nw.delay = on
	var firstErr error
	for i := 0; i < nw.nodes; i++ {
		args := []string{"netns", "exec", nw.NodeNS(i), "tc", "qdisc", "del", "dev", "eth0", "root"}
		if on {
			args = []string{"netns", "exec", nw.NodeNS(i), "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "40ms", "30ms"}
		}
		if err := run("ip", args...); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// Heal removes every partition, loss and delay.
func (nw *Network) Heal() error {
	err := nw.Cut(nil)
	if lerr := nw.Loss(0); err == nil {
		err = lerr
	}
	if nw.Netem {
		if derr := nw.Delay(false); err == nil {
			err = derr
		}
	}
	return err
}

// applyLocked rewrites every node's CHAOS chains at once (one
// iptables-restore per node, all nodes in parallel).
func (nw *Network) applyLocked() error {
	errs := make([]error, nw.nodes)
	var wg sync.WaitGroup
	for i := 0; i < nw.nodes; i++ {
		var rules bytes.Buffer
		rules.WriteString("*filter\n:CHAOS_IN - [0:0]\n:CHAOS_OUT - [0:0]\n")
		for j := 0; j < nw.nodes; j++ {
			if j != i && nw.cut[linkKey(i, j)] {
				fmt.Fprintf(&rules, "-A CHAOS_IN -s %s -j DROP\n-A CHAOS_OUT -d %s -j DROP\n", nw.IPs[j], nw.IPs[j])
			}
		}
		if nw.lossPc > 0 {
			// Client traffic (from the host) is never dropped.
			fmt.Fprintf(&rules, "-A CHAOS_IN -s %s -j RETURN\n-A CHAOS_IN -s %s.0/24 -m statistic --mode random --probability %.2f -j DROP\n",
				nw.HostIP, nw.subnet, float64(nw.lossPc)/100)
		}
		rules.WriteString("COMMIT\n")
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("ip", "netns", "exec", nw.NodeNS(i), "iptables-restore", "--noflush")
			cmd.Stdin = &rules
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("chaos: iptables-restore in %s: %v: %s", nw.NodeNS(i), err, oneLine(out))
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Close deletes the namespaces and links. Processes still running inside
// keep their namespace alive until they exit: stop them first.
func (nw *Network) Close() error {
	_ = run("ip", "link", "del", nw.hostLink())
	var firstErr error
	for _, ns := range append([]string{nw.switchNS()}, nodeNamespaces(nw)...) {
		if err := run("ip", "netns", "del", ns); err != nil && firstErr == nil && !strings.Contains(err.Error(), "No such file") {
			firstErr = err
		}
	}
	return firstErr
}

func nodeNamespaces(nw *Network) []string {
	var out []string
	for i := 0; i < nw.nodes; i++ {
		out = append(out, nw.NodeNS(i))
	}
	return out
}

// WrapBinary writes a launcher next to the cluster that runs bin inside
// node --id N's namespace; proccluster.Cluster runs it in place of bin. It execs,
// so the process proccluster signals is the broker itself.
func (nw *Network) WrapBinary(dir, bin string) (string, error) {
	script := fmt.Sprintf(`#!/bin/sh
# Runs raftmq inside the network namespace of the node named by --id.
prev=""; id=""
for a in "$@"; do [ "$prev" = "--id" ] && id="$a"; prev="$a"; done
[ -n "$id" ] || { echo "chaos launcher: no --id" >&2; exit 2; }
exec ip netns exec "%s-n$id" %s "$@"
`, nw.token, strconv.Quote(bin))
	path := filepath.Join(dir, "raftmq-netns")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("chaos: write launcher: %w", err)
	}
	return path, nil
}

// removeStaleNetworks deletes namespaces and host links left by runs whose
// process is gone, killing the brokers such a run left running inside.
func removeStaleNetworks() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		token, _, ok := strings.Cut(name, "-")
		if !ok || !strings.HasPrefix(token, netPrefix) || len(token) < len(netPrefix)+2 {
			continue
		}
		pid, err := strconv.ParseInt(token[len(netPrefix):len(token)-1], 16, 64)
		if err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its run is alive
		}
		// Brokers a crashed run left inside keep the namespace alive.
		if pids, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, f := range strings.Fields(string(pids)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		_ = run("ip", "link", "del", token+"-h")
		_ = run("ip", "netns", "del", name)
	}
}

// freeSubnet picks a third octet no interface on the host uses.
func freeSubnet() (int, error) {
	out, err := exec.Command("ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		return 0, fmt.Errorf("%w: ip addr: %w", ErrNoNetns, err)
	}
	start := (os.Getpid() + int(netCounter.Load())) % 250
	for k := 0; k < 250; k++ {
		x := (start+k)%250 + 1
		if !bytes.Contains(out, []byte(fmt.Sprintf(" %s.%d.", subnetBase, x))) {
			return x, nil
		}
	}
	return 0, fmt.Errorf("%w: no free %s.X.0/24", ErrNoNetns, subnetBase)
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, oneLine(out))
	}
	return nil
}

// oneLine joins a tool's output lines with "; ".
func oneLine(out []byte) string {
	var parts []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
