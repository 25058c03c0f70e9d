package broker

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/storage"
)

var deepMessages = flag.Int("deep.messages", 10000, "messages of 256 B queued by TestDeepQueue (the issue's full size: 1000000)")

// deepMsg is message i of a deep queue: 256 bytes, its number first.
func deepMsg(i int) string {
	s := fmt.Sprintf("d%08d-", i)
	return s + strings.Repeat("x", 256-len(s))
}

// TestDeepQueue is the story of a deep queue: it fills while snapshots are
// taken under the load (the bytes trigger, decision 15), every broker
// restarts at depth, a wiped follower rejoins through InstallSnapshot of
// the whole queue, and then, made leader, it gives every message back in
// order and nothing more. Each stage checks that nothing was lost. Run the
// full size with -deep.messages=1000000 (and a long -timeout).
func TestDeepQueue(t *testing.T) {
	n := *deepMessages
	t.Logf("%d messages of 256 B (-deep.messages)", n)
	// Compactions often, several while the queue grows.
	c := newSnapCluster(t, 3, 100, 10, 64<<10)
	lead := c.leader()
	c.must(lead, `{"type":"topic","method":"PUT","topic":"deep"}`)
	want := storage.TopicDepth{Name: "deep", Depth: uint64(n), Bytes: uint64(n) * 256}
	// checkDepth waits until every node has applied what the leader has
	// (read from the leader's state.db: its published status can be a
	// tick old), then checks each holds the whole queue.
	checkDepth := func(stage string) {
		t.Helper()
		lead := c.leader()
		target := c.nodes[lead].b.state.AppliedIndex()
		for i := range c.cfgs {
			testwait.For(t, 60*time.Second, fmt.Sprintf("%s: node %d to apply %d", stage, i, target), func() bool {
				return c.nodes[i].b.state.AppliedIndex() >= target
			})
			if got := depthsOf(t, c.nodes[i]); !slices.Equal(got, []storage.TopicDepth{want}) {
				t.Fatalf("%s: node %d holds %+v, want %+v", stage, i, got, want)
			}
		}
	}

	// Fill. Note where the first half ends: a snapshot past it was taken
	// at depth, while puts kept arriving.
	const chunk = 2000
	var half uint64
	for lo := 0; lo < n; lo += chunk {
		reqs := make([]string, 0, chunk)
		for i := lo; i < min(lo+chunk, n); i++ {
			reqs = append(reqs, putReq("deep", deepMsg(i)))
		}
		c.pipeline(lead, reqs)
		if half == 0 && lo+chunk >= n/2 {
			half = c.clients[lead].status().Applied
		}
	}
	checkDepth("after the fill")
	// The data directory holds state.db (the snapshot) and the short log:
	// at most twice the bytes queued plus deepDirSlackBytes on every node
	// (decision 26), on disk. Kept snapshot files (two copies of the
	// state) would break it. A snapshot file sent to a lagging follower
	// is there only until its transfer ends: wait for that.
	queued := int64(n) * 256
	for i := range c.cfgs {
		var got int64
		testwait.For(t, 30*time.Second, fmt.Sprintf("node %d's data directory within 2 × %d B + %d B", i, queued, deepDirSlackBytes), func() bool {
			got = dirDiskBytes(t, c.cfgs[i].DataDir)
			return got <= 2*queued+deepDirSlackBytes
		})
		t.Logf("node %d: data directory %d B on disk = %.2f × the %d B queued", i, got, float64(got)/float64(queued), queued)
	}
	lst := c.clients[lead].status()
	if lst.Snapshot <= half || lst.FirstIndex <= 1 {
		t.Fatalf("the leader's last snapshot is at %d (log from %d); want one taken past %d, at depth under load", lst.Snapshot, lst.FirstIndex, half)
	}
	if lst.HeapBytes == 0 || (runtime.GOOS == "linux" && lst.AnonBytes == 0) {
		t.Errorf("status shows heap %d B, anonymous RSS %d B; want both", lst.HeapBytes, lst.AnonBytes)
	}

	// Every broker restarts at depth.
	for i := range c.cfgs {
		c.stop(i)
	}
	for i := range c.cfgs {
		c.start(i)
	}
	lead = c.leader()
	checkDepth("after restarting every broker")

	// A wiped follower gets the whole queue by InstallSnapshot.
	f := (lead + 1) % 3
	c.stop(f)
	if err := os.RemoveAll(c.cfgs[f].DataDir); err != nil {
		t.Fatal(err)
	}
	c.must(lead, snapshotReq) // the leader's log starts past the wiped node's
	c.cfgs[f].Recover = true
	c.start(f)
	c.cfgs[f].Recover = false
	testwait.For(t, 60*time.Second, "the wiped follower to end recovering", func() bool {
		return !c.clients[f].status().Recovering
	})
	if c.nodes[f].b.stats.snapshotsInstalled.Load() == 0 {
		t.Fatalf("the wiped follower caught up without installing a snapshot")
	}
	checkDepth("after the wiped follower rejoined")
	// The snapshot file lived only for the transfer, on both sides.
	for _, i := range []int{lead, f} {
		dir := filepath.Join(c.cfgs[i].DataDir, storage.SnapshotsDir)
		testwait.For(t, 30*time.Second, fmt.Sprintf("node %d's snapshot files to be deleted", i), func() bool {
			left, _ := filepath.Glob(filepath.Join(dir, "*.snap"))
			return len(left) == 0
		})
	}

	// Made leader, the rejoined node gives back every message in order.
	c.makeLeader(f)
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = deepMsg(i)
	}
	c.drainExpect(t, f, map[string][]string{"deep": msgs})
}

// deepDirSlackBytes is the constant of the data directory bound at CI
// size: bbolt's meta and freelist pages, raft.db's log of at most
// snapshot_entries + trailing_entries entries and the pages it last freed.
const deepDirSlackBytes = 1 << 20

// dirDiskBytes is what the regular files under dir take on disk (blocks
// allocated, as du reports; bbolt grows its files sparsely).
func dirDiskBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		} else {
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}
