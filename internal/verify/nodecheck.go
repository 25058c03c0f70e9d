package verify

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/internal/proccluster"
	"github.com/raftmq/raftmq/storage"
)

// NodeResult is the verdict on the nodes' final state.
type NodeResult struct {
	// Status is each node's last status before the stop.
	Status []wire.Status `json:"status"`
	// Converged: every node answered with the same last index, commit ==
	// last index and applied == commit.
	Converged bool `json:"converged"`
	// Inspect: each data dir after a graceful stop.
	Inspect []storage.Report `json:"-"`
	// LogCompared is the index range compared across every node's raft.db.
	LogCompared [2]uint64 `json:"log_compared"`
	Problems    []string  `json:"problems,omitempty"`
}

// OK reports identical, healthy nodes.
func (r NodeResult) OK() bool { return r.Converged && len(r.Problems) == 0 }

// waitConverged polls the members until they agree or timeout passes.
func waitConverged(c *proccluster.Cluster, members []int, timeout time.Duration) ([]wire.Status, bool) {
	deadline := time.Now().Add(timeout)
	for {
		sts, ok := statusAll(c, members)
		if ok && converged(sts) {
			return sts, true
		}
		if time.Now().After(deadline) {
			return sts, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func statusAll(c *proccluster.Cluster, members []int) ([]wire.Status, bool) {
	sts := make([]wire.Status, len(members))
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for k, i := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sts[k], errs[k] = c.Status(i, 500*time.Millisecond)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return sts, false
		}
	}
	return sts, true
}

func converged(sts []wire.Status) bool {
	leaders := 0
	for _, s := range sts {
		if s.Role == "Leader" {
			leaders++
		}
		if s.LastIndex != sts[0].LastIndex || s.Commit != s.LastIndex || s.Applied != s.Commit || s.Term != sts[0].Term {
			return false
		}
	}
	return leaders == 1
}

// checkNodes waits for the members to converge, stops every node
// gracefully and compares the members' data dirs: no damage, same topics
// and depths, same log over the range every member still holds. Nodes the
// membership family removed are stopped already and left out.
func checkNodes(c *proccluster.Cluster, members []int, timeout time.Duration, inspectDirs func() []string) NodeResult {
	var r NodeResult
	problem := func(format string, args ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, args...)) }
	r.Status, r.Converged = waitConverged(c, members, timeout)
	if !r.Converged {
		for k, s := range r.Status {
			problem("node %d did not converge within %v: role %s term %d last %d commit %d applied %d",
				members[k], timeout, s.Role, s.Term, s.LastIndex, s.Commit, s.Applied)
		}
	}
	// Followers first, the leader last: no stop triggers an election that
	// would append an entry the stopped nodes lack.
	order := make([]int, 0, len(c.Addrs))
	for k, s := range r.Status {
		if s.Role != "Leader" {
			order = append(order, members[k])
		}
	}
	for k, s := range r.Status {
		if s.Role == "Leader" {
			order = append(order, members[k])
		}
	}
	for i := range c.Addrs {
		if !slices.Contains(order, i) && c.Running(i) {
			order = append([]int{i}, order...) // not a member: first
		}
	}
	for _, i := range order {
		if !c.Running(i) {
			continue
		}
		if _, err := c.Stop(i, 15*time.Second); err != nil {
			problem("node %d: graceful stop: %v", i, err)
		}
	}
	all := inspectDirs()
	dirs := make([]string, len(members))
	for k, i := range members {
		dirs[k] = all[i]
	}
	for k, i := range members {
		rep, err := storage.Inspect(dirs[k])
		if err != nil {
			problem("node %d: inspect: %v", i, err)
			continue
		}
		r.Inspect = append(r.Inspect, rep)
		for _, p := range rep.Problems {
			problem("node %d: inspect: %s", i, p)
		}
	}
	if len(r.Inspect) != len(members) {
		return r
	}
	base, b := r.Inspect[0], members[0]
	for k, rep := range r.Inspect[1:] {
		i := members[k+1]
		if !slices.Equal(rep.Topics, base.Topics) {
			problem("node %d's topics differ from node %d's: %d vs %d topics (first difference %s)", i, b, len(rep.Topics), len(base.Topics), firstDiff(rep.Topics, base.Topics))
		}
		if rep.LastIndex != base.LastIndex {
			problem("node %d's log ends at %d, node %d's at %d", i, rep.LastIndex, b, base.LastIndex)
		}
		if rep.AppliedIndex != base.AppliedIndex {
			problem("node %d applied %d, node %d applied %d", i, rep.AppliedIndex, b, base.AppliedIndex)
		}
	}
	r.LogCompared, r.Problems = compareLogs(members, dirs, r.Inspect, r.Problems)
	return r
}

func firstDiff(a, b []storage.TopicDepth) string {
	for i := 0; i < min(len(a), len(b)); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("%+v vs %+v", a[i], b[i])
		}
	}
	return "in length"
}

// compareLogs reads every node's raft.db (all nodes stopped) and compares
// the entries in the range all of them hold.
// members[k] names dirs[k] and reps[k] in the problems.
func compareLogs(members []int, dirs []string, reps []storage.Report, problems []string) ([2]uint64, []string) {
	lo, hi := uint64(0), ^uint64(0)
	for _, rep := range reps {
		lo, hi = max(lo, rep.FirstIndex), min(hi, rep.LastIndex)
	}
	if lo == 0 || lo > hi {
		return [2]uint64{}, problems
	}
	var logs [][]entryDigest
	for i, rep := range reps {
		db, err := storage.OpenRaftDB(filepath.Join(dirs[i], storage.RaftDBFile), rep.ClusterID)
		if err != nil {
			return [2]uint64{lo, hi}, append(problems, fmt.Sprintf("node %d: open raft.db: %v", members[i], err))
		}
		ents, err := db.Entries(lo, hi+1, ^uint64(0))
		db.Close()
		if err != nil {
			return [2]uint64{lo, hi}, append(problems, fmt.Sprintf("node %d: read log %d..%d: %v", members[i], lo, hi, err))
		}
		d := make([]entryDigest, len(ents))
		for k, e := range ents {
			d[k] = entryDigest{e.Index, e.Term, uint8(e.Type), e.Data}
		}
		logs = append(logs, d)
	}
	for i := 1; i < len(logs); i++ {
		if len(logs[i]) != len(logs[0]) {
			problems = append(problems, fmt.Sprintf("node %d returned %d entries for %d..%d, node %d %d", members[i], len(logs[i]), lo, hi, members[0], len(logs[0])))
			continue
		}
		for k := range logs[0] {
			a, b := logs[0][k], logs[i][k]
			if a.index != b.index || a.term != b.term || a.typ != b.typ || !bytes.Equal(a.data, b.data) {
				problems = append(problems, fmt.Sprintf("log entry %d differs: node %d has term %d, node %d has term %d (or other content)", a.index, members[0], a.term, members[i], b.term))
				break
			}
		}
	}
	return [2]uint64{lo, hi}, problems
}

type entryDigest struct {
	index, term uint64
	typ         uint8
	data        []byte
}
