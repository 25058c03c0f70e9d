package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/raftmq/raftmq/internal/powerfs"
	"github.com/raftmq/raftmq/internal/proccluster"
)

// Fault families, as named on the command line (--faults).
const (
	FamilyKill      = "kill"      // SIGKILL the leader, a follower, or every node; restart on heal
	FamilyPause     = "pause"     // SIGSTOP the leader, a follower or a minority past the election timeout
	FamilyPartition = "partition" // leader isolated, halves, majority ring / bridge, one random node
	FamilyLoss      = "loss"      // random loss of peer packets
	FamilyDelay     = "delay"     // peer latency with jitter (needs tc netem)
	FamilyCombo     = "combo"     // kill one, pause others so the restarted node completes a quorum
	FamilyPowerCut  = "power-cut" // the leader, a follower or every node loses power (needs FUSE)
	// FamilyMembership adds a fresh node and removes the leader or a
	// follower (see membership.go); loopback only, without CURVE.
	FamilyMembership = "membership"
)

// AllFamilies lists every family in a stable order.
// The power-cut family is opt-in (--faults power-cut): on a run inside
// network namespaces its FUSE mounts were once left behind by a run that
// passed, so it is not yet part of the default mix nor of CI. The membership
// family is opt-in too: its added nodes have no namespace and no CURVE key
// in the members' cluster files (see membership.go).
var AllFamilies = []string{FamilyKill, FamilyPause, FamilyPartition, FamilyLoss, FamilyDelay, FamilyCombo}

// netFamilies need the namespaces.
var netFamilies = map[string]bool{FamilyPartition: true, FamilyLoss: true, FamilyDelay: true}

// faults of each family.
var familyFaults = map[string][]string{
	FamilyKill:       {"kill-leader", "kill-follower", "kill-all"},
	FamilyPause:      {"pause-leader", "pause-follower", "pause-minority"},
	FamilyPartition:  {"partition-leader", "partition-halves", "partition-ring", "partition-node"},
	FamilyLoss:       {"loss"},
	FamilyDelay:      {"delay"},
	FamilyCombo:      {"combo-kill-pause", "combo-pause-kill-leader"},
	FamilyPowerCut:   {"power-cut-leader", "power-cut-follower", "power-cut-all"},
	FamilyMembership: {"member-replace-leader", "member-replace-follower"},
}

// Event is one injected fault, from injection to heal.
type Event struct {
	Fault  string        `json:"fault"`
	Start  time.Duration `json:"start"`
	End    time.Duration `json:"end"` // heal time; 0 while active
	Nodes  []int         `json:"nodes"`
	Detail string        `json:"detail,omitempty"`
	// Cut is the set of blocked links while a network fault is active;
	// Minority are the nodes that could reach fewer than a quorum (counting
	// themselves) the whole time: none of them may acknowledge a new request.
	Cut      [][2]int `json:"cut,omitempty"`
	Minority []int    `json:"minority,omitempty"`
	// StaleLeaders: minority nodes that still claimed leadership at the end
	// of a cut that outlasted checkQuorumGrace (CheckQuorum must have made
	// them step down).
	StaleLeaders []string `json:"stale_leaders,omitempty"`
	Err          string   `json:"error,omitempty"`
}

// checkQuorumGrace is how long a leader cut off from a majority may keep
// claiming leadership: well above the brokers' election timeout (see
// brokerArgs: 150–300 ms).
const checkQuorumGrace = 900 * time.Millisecond

// NemesisConfig shapes the fault schedule.
type NemesisConfig struct {
	Families []string
	QuietMin time.Duration // healthy gap between faults
	QuietMax time.Duration
	HoldMin  time.Duration // how long a fault lasts
	HoldMax  time.Duration
}

type nemesis struct {
	cfg    NemesisConfig
	c      *proccluster.Cluster
	net    *Network // nil: no network faults
	rng    *rand.Rand
	hist   *history
	faults []string
	// disks are the nodes' power-cut filesystems (power-cut family only).
	disks []*powerfs.FS

	logf func(format string, args ...any)

	mu     sync.Mutex
	events []Event
	killed map[int]bool
	paused map[int]bool
	// members are the nodes that are voters now (the membership family
	// changes them); removed ones stopped and never come back.
	members []int
	removed map[int]bool
	// memberCmd, when set (tests only), stands in for running
	// `raftmq member ...`.
	memberCmd func(ctx context.Context, args ...string) (string, error)
}

func newNemesis(cfg NemesisConfig, c *proccluster.Cluster, nw *Network, seed uint64, hist *history) *nemesis {
	n := &nemesis{cfg: cfg, c: c, net: nw, rng: rand.New(rand.NewPCG(seed, 0x6e656d65)), hist: hist,
		killed: map[int]bool{}, paused: map[int]bool{}, removed: map[int]bool{}}
	for i := range c.Addrs {
		n.members = append(n.members, i)
	}
	for _, f := range cfg.Families {
		n.faults = append(n.faults, familyFaults[f]...)
	}
	return n
}

// nodes is the number of node slots, members or not. Only the membership
// family makes them differ from the members, and it never runs with the
// network families, which index nodes 0..nodes()-1.
func (n *nemesis) nodes() int { return len(n.c.Addrs) }

// voters returns the current members (every node if members was never
// set).
func (n *nemesis) voters() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.members == nil {
		out := make([]int, n.nodes())
		for i := range out {
			out[i] = i
		}
		return out
	}
	return slices.Clone(n.members)
}

func (n *nemesis) quorum() int { return len(n.voters())/2 + 1 }

// run injects faults until ctx ends, healing each before the next.
func (n *nemesis) run(ctx context.Context) {
	if len(n.faults) == 0 {
		<-ctx.Done()
		return
	}
	for {
		if !sleepCtx(ctx, n.between(n.cfg.QuietMin, n.cfg.QuietMax)) {
			return
		}
		fault := n.faults[n.rng.IntN(len(n.faults))]
		hold := n.between(n.cfg.HoldMin, n.cfg.HoldMax)
		n.inject(ctx, fault, hold)
	}
}

func (n *nemesis) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(n.rng.Int64N(int64(hi-lo)))
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// leader finds the current leader among running, unpaused nodes, or -1.
// The random fallback draw is made either way, so the schedule's draws do
// not depend on whether a leader was found.
func (n *nemesis) leader() int {
	members := n.voters()
	fallback := members[n.rng.IntN(len(members))]
	type st struct {
		term uint64
		ok   bool
	}
	res := make([]st, n.nodes())
	var wg sync.WaitGroup
	for _, i := range members {
		if n.killed[i] || n.paused[i] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, err := n.c.Status(i, 300*time.Millisecond); err == nil && s.Role == "Leader" {
				res[i] = st{s.Term, true}
			}
		}()
	}
	wg.Wait()
	best := -1
	for i, r := range res {
		if r.ok && (best < 0 || r.term > res[best].term) {
			best = i
		}
	}
	if best < 0 {
		return fallback
	}
	return best
}

// others returns the members not in except, in a seeded random order.
func (n *nemesis) others(except ...int) []int {
	var out []int
	for _, i := range n.voters() {
		skip := false
		for _, e := range except {
			skip = skip || e == i
		}
		if !skip {
			out = append(out, i)
		}
	}
	n.rng.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
	return out
}

func (n *nemesis) begin(fault string, nodes []int, detail string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	sorted := append([]int(nil), nodes...)
	sort.Ints(sorted)
	n.events = append(n.events, Event{Fault: fault, Start: n.hist.now(), Nodes: sorted, Detail: detail})
	if n.logf != nil {
		n.logf("%7.3fs inject %s on %v %s", n.events[len(n.events)-1].Start.Seconds(), fault, sorted, detail)
	}
	return len(n.events) - 1
}

func (n *nemesis) end(ev int, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events[ev].End = n.hist.now()
	if err != nil && n.events[ev].Err == "" {
		n.events[ev].Err = err.Error()
	}
	if n.logf != nil {
		n.logf("%7.3fs healed %s %s", n.events[ev].End.Seconds(), n.events[ev].Fault, n.events[ev].Err)
	}
}

func (n *nemesis) note(ev int, err error) {
	if err == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.events[ev].Err == "" {
		n.events[ev].Err = err.Error()
	}
}

// inject applies one fault for hold, then heals it.
func (n *nemesis) inject(ctx context.Context, fault string, hold time.Duration) {
	ldr := n.leader()
	switch fault {
	case "kill-leader", "kill-follower":
		target := ldr
		if fault == "kill-follower" {
			target = n.others(ldr)[0]
		}
		ev := n.begin(fault, []int{target}, "")
		n.note(ev, n.kill(target))
		sleepCtx(ctx, hold)
		n.end(ev, n.restart(target))
	case "power-cut-leader", "power-cut-follower", "power-cut-all":
		targets := []int{ldr}
		switch fault {
		case "power-cut-follower":
			targets = n.others(ldr)[:1]
		case "power-cut-all":
			targets = n.others()
		}
		ev := n.begin(fault, targets, "SIGKILL, unsynced data and names lost")
		n.note(ev, n.powerCut(targets))
		sleepCtx(ctx, hold/2)
		var err error
		for _, i := range targets {
			if e := n.restart(i); err == nil {
				err = e
			}
		}
		n.end(ev, err)
	case "kill-all":
		all := n.others()
		ev := n.begin(fault, all, "")
		n.note(ev, n.c.KillAll())
		n.mu.Lock()
		for _, i := range all {
			n.killed[i], n.paused[i] = true, false
		}
		n.mu.Unlock()
		sleepCtx(ctx, hold/2)
		var err error
		for _, i := range all {
			if e := n.restart(i); err == nil {
				err = e
			}
		}
		n.end(ev, err)
	case "pause-leader", "pause-follower", "pause-minority":
		targets := []int{ldr}
		switch fault {
		case "pause-follower":
			targets = n.others(ldr)[:1]
		case "pause-minority":
			targets = n.others()[:n.quorum()-1]
		}
		ev := n.begin(fault, targets, "")
		for _, t := range targets {
			n.note(ev, n.pause(t))
		}
		sleepCtx(ctx, hold)
		var err error
		for _, t := range targets {
			if e := n.resume(t); err == nil {
				err = e
			}
		}
		n.end(ev, err)
	case "partition-leader", "partition-halves", "partition-node", "partition-ring":
		cut, nodes, detail := n.partition(fault, ldr)
		// The event starts once every rule is in place: the minority check
		// must not blame a node for what it committed before the cut.
		err := n.net.Cut(cut)
		ev := n.begin(fault, nodes, detail)
		n.mu.Lock()
		n.events[ev].Cut, n.events[ev].Minority = cut, minority(n.nodes(), cut)
		n.mu.Unlock()
		n.note(ev, err)
		cutAt := time.Now()
		sleepCtx(ctx, hold)
		if time.Since(cutAt) > checkQuorumGrace {
			n.probeStaleLeaders(ev)
		}
		n.end(ev, n.net.Cut(nil))
	case "loss":
		pct := 10 + n.rng.IntN(21)
		ev := n.begin(fault, n.others(), fmt.Sprintf("%d%% of peer packets dropped", pct))
		n.note(ev, n.net.Loss(pct))
		sleepCtx(ctx, hold)
		n.end(ev, n.net.Loss(0))
	case "delay":
		ev := n.begin(fault, n.others(), "40ms ± 30ms on every node's packets")
		n.note(ev, n.net.Delay(true))
		sleepCtx(ctx, hold)
		n.end(ev, n.net.Delay(false))
	case "combo-kill-pause":
		// Kill one node, let the others commit without it, then pause
		// enough of the rest that no quorum is left; restart the killed
		// node: its stale log must complete a quorum without losing or
		// inventing anything. Then resume the paused nodes.
		hold = max(hold, 3*time.Second) // each of its three phases outlasts an election
		k := n.others()[0]
		rest := n.others(k)
		paused := rest[:len(rest)+1-n.quorum()]
		nodes := append([]int{k}, paused...)
		ev := n.begin(fault, nodes, fmt.Sprintf("kill %d, pause %v, restart %d, resume", k, paused, k))
		n.note(ev, n.kill(k))
		sleepCtx(ctx, hold/3)
		for _, p := range paused {
			n.note(ev, n.pause(p))
		}
		sleepCtx(ctx, hold/3)
		n.note(ev, n.restart(k))
		sleepCtx(ctx, hold/3)
		var err error
		for _, p := range paused {
			if e := n.resume(p); err == nil {
				err = e
			}
		}
		n.end(ev, err)
	case "combo-pause-kill-leader":
		// Pause a minority that excludes the leader, then kill the leader:
		// the rest cannot elect until the killed leader restarts and joins
		// them; the paused nodes resume last, behind everyone.
		hold = max(hold, 2*time.Second)
		paused := n.others(ldr)[:n.quorum()-1]
		ev := n.begin(fault, append([]int{ldr}, paused...), fmt.Sprintf("pause %v, kill leader %d, restart it, resume", paused, ldr))
		for _, p := range paused {
			n.note(ev, n.pause(p))
		}
		n.note(ev, n.kill(ldr))
		sleepCtx(ctx, hold/2)
		n.note(ev, n.restart(ldr))
		sleepCtx(ctx, hold/2)
		var err error
		for _, p := range paused {
			if e := n.resume(p); err == nil {
				err = e
			}
		}
		n.end(ev, err)
	case "member-replace-leader", "member-replace-follower":
		target := ldr
		if fault == "member-replace-follower" {
			target = n.others(ldr)[0]
		}
		ev := n.begin(fault, []int{target}, "")
		_, err := n.replace(ctx, ev, target)
		n.end(ev, err)
	default:
		panic(fmt.Sprintf("chaos: unknown fault %q", fault))
	}
}

// partition returns the links to cut for fault, the nodes it is about and
// a description.
func (n *nemesis) partition(fault string, ldr int) ([][2]int, []int, string) {
	var sideA []int
	switch fault {
	case "partition-leader":
		sideA = []int{ldr}
	case "partition-node":
		sideA = n.others()[:1]
	case "partition-halves":
		sideA = n.others()[:n.nodes()/2]
	case "partition-ring":
		// Every node keeps links to a majority (counting itself), but no
		// two nodes see the same majority: a ring where each node reaches
		// its nearest neighbours. With 3 nodes that is a bridge: one node
		// reaches both others, which cannot reach each other.
		order := n.others()
		pos := map[int]int{}
		for p, node := range order {
			pos[node] = p
		}
		reach := n.quorum() - 1 // peers each node keeps
		var cut [][2]int
		for i := 0; i < n.nodes(); i++ {
			for j := i + 1; j < n.nodes(); j++ {
				d := (pos[i] - pos[j] + n.nodes()) % n.nodes()
				d = min(d, n.nodes()-d)
				if d > (reach+1)/2 {
					cut = append(cut, [2]int{i, j})
				}
			}
		}
		if n.nodes() == 3 {
			cut = [][2]int{{order[0], order[2]}}
			return cut, order, fmt.Sprintf("bridge: %d reaches %d and %d, which are cut off from each other", order[1], order[0], order[2])
		}
		return cut, order, fmt.Sprintf("ring %v, each node reaches its neighbours", order)
	}
	inA := map[int]bool{}
	for _, a := range sideA {
		inA[a] = true
	}
	var cut [][2]int
	var sideB []int
	for j := 0; j < n.nodes(); j++ {
		if !inA[j] {
			sideB = append(sideB, j)
		}
	}
	for _, a := range sideA {
		for _, b := range sideB {
			cut = append(cut, linkKey(a, b))
		}
	}
	sort.Ints(sideA)
	return cut, sideA, fmt.Sprintf("%v | %v", sideA, sideB)
}

// minority lists the nodes that, with cut in place, reach fewer than a
// quorum of nodes (themselves included) over direct links.
func minority(nodes int, cut [][2]int) []int {
	blocked := map[[2]int]bool{}
	for _, l := range cut {
		blocked[linkKey(l[0], l[1])] = true
	}
	var out []int
	for i := 0; i < nodes; i++ {
		reach := 1
		for j := 0; j < nodes; j++ {
			if j != i && !blocked[linkKey(i, j)] {
				reach++
			}
		}
		if reach < nodes/2+1 {
			out = append(out, i)
		}
	}
	return out
}

func (n *nemesis) kill(i int) error {
	n.mu.Lock()
	if n.killed[i] {
		n.mu.Unlock()
		return nil
	}
	n.killed[i], n.paused[i] = true, false
	n.mu.Unlock()
	return n.c.Kill(i)
}

func (n *nemesis) restart(i int) error {
	n.mu.Lock()
	was := n.killed[i]
	n.killed[i] = false
	n.mu.Unlock()
	if !was {
		return nil
	}
	return n.c.Start(i)
}

func (n *nemesis) pause(i int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.killed[i] || n.paused[i] {
		return nil
	}
	n.paused[i] = true
	return n.c.Pause(i)
}

func (n *nemesis) resume(i int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.paused[i] {
		return nil
	}
	n.paused[i] = false
	return n.c.Resume(i)
}

// healAll undoes whatever is still in effect: network rules, pauses,
// kills.
func (n *nemesis) healAll() []string {
	var notes []string
	if n.net != nil {
		if err := n.net.Heal(); err != nil {
			notes = append(notes, "heal network: "+err.Error())
		}
	}
	for i := 0; i < n.nodes(); i++ {
		if err := n.resume(i); err != nil {
			notes = append(notes, fmt.Sprintf("resume node %d: %v", i, err))
		}
		if err := n.restart(i); err != nil {
			notes = append(notes, fmt.Sprintf("restart node %d: %v", i, err))
		}
	}
	return notes
}

func (n *nemesis) eventLog() []Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Event(nil), n.events...)
}

func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%8.3fs–%8.3fs %-18s nodes %v", e.Start.Seconds(), e.End.Seconds(), e.Fault, e.Nodes)
	if e.Detail != "" {
		fmt.Fprintf(&b, " (%s)", e.Detail)
	}
	if len(e.Minority) > 0 {
		fmt.Fprintf(&b, " minority %v", e.Minority)
	}
	for _, sl := range e.StaleLeaders {
		fmt.Fprintf(&b, " STALE LEADER: %s", sl)
	}
	if e.Err != "" {
		fmt.Fprintf(&b, " ERROR %s", e.Err)
	}
	return b.String()
}

// probeStaleLeaders asks each minority node of event ev (still cut off)
// for its role.
func (n *nemesis) probeStaleLeaders(ev int) {
	n.mu.Lock()
	var minority []int
	for _, m := range n.events[ev].Minority {
		if !n.killed[m] && !n.paused[m] {
			minority = append(minority, m)
		}
	}
	n.mu.Unlock()
	for _, m := range minority {
		st, err := n.c.Status(m, 300*time.Millisecond)
		if err == nil && st.Role == "Leader" {
			n.mu.Lock()
			n.events[ev].StaleLeaders = append(n.events[ev].StaleLeaders,
				fmt.Sprintf("node %d still leader of term %d %.3fs into the cut", m, st.Term, (n.hist.now()-n.events[ev].Start).Seconds()))
			n.mu.Unlock()
		}
	}
}
