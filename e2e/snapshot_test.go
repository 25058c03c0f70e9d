package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/internal/proccluster"
	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/storage"
)

// snapArgs make snapshots frequent and transfers many-chunked.
var snapArgs = []string{"--snapshot-entries", "200", "--trailing-entries", "20", "--snapshot-chunk-bytes", "4096"}

// putParallel puts count messages of size bytes to topic from workers
// clients at once (so they commit in batches); message i of worker w is
// "w<w>-<i>-..." so per-worker order is checkable.
func putParallel(t *testing.T, c *proccluster.Cluster, topic string, workers, count, size int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := c.Client(client.Options{Timeout: 20 * time.Second})
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			pad := strings.Repeat("x", size)
			for i := w; i < count; i += workers {
				if ok, err := cl.Put(context.Background(), topic, fmt.Sprintf("w%d-%06d-%s", w, i, pad)); err != nil || !ok {
					errs <- fmt.Errorf("put %d: %v %v", i, ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// stoppedReports stops every node gracefully and inspects each data dir.
func stoppedReports(t *testing.T, c *proccluster.Cluster) []storage.Report {
	t.Helper()
	var reps []storage.Report
	for i := range c.Addrs {
		if c.Running(i) {
			if _, err := c.Stop(i, 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range c.Addrs {
		rep, err := storage.Inspect(c.DataDir(i))
		if err != nil || !rep.OK() {
			t.Fatalf("node %d: inspect: %v %v", i, err, rep.Problems)
		}
		reps = append(reps, rep)
	}
	return reps
}

// TestSnapshotReceiverKilledMidTransfer: the follower receiving a snapshot
// is SIGKILLed in the middle of the transfer; restarted, it discards the
// half-received file, receives again and ends with the same state as the
// others.
func TestSnapshotReceiverKilledMidTransfer(t *testing.T) {
	c := newCluster(t, 3, snapArgs...)
	cl := clusterClient(t, c)
	lead, _, err := c.WaitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f := (lead + 1) % 3
	if err := c.Kill(f); err != nil {
		t.Fatal(err)
	}
	if ok, err := cl.CreateTopic(context.Background(), "q"); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	// ~6 MB of state: 1500 chunks of 4 KiB, a transfer long enough to hit.
	const bulk, tail = 1500, 20
	putParallel(t, c, "q", 16, bulk, 4000)
	if err := c.Start(f); err != nil {
		t.Fatal(err)
	}
	snapDir := filepath.Join(c.DataDir(f), "snapshots")
	testwait.For(t, 20*time.Second, "the follower to be receiving a snapshot", func() bool {
		ents, _ := os.ReadDir(snapDir)
		for _, e := range ents {
			if strings.Contains(e.Name(), ".recv.") {
				return true
			}
		}
		return false
	})
	if err := c.Kill(f); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(f); err != nil {
		t.Fatal(err)
	}
	lst, err := c.Status(lead, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "the restarted follower to catch up", func() bool {
		st, err := c.Status(f, 200*time.Millisecond)
		return err == nil && st.Applied >= lst.Commit && st.Snapshot > 0
	})
	putParallel(t, c, "q", 4, tail, 10) // and it follows the log afterwards
	reps := stoppedReports(t, c)
	for i, r := range reps {
		// (Applied indexes may differ by the no-op of a leadership transfer
		// during the graceful stops.)
		if !reflect.DeepEqual(r.Topics, reps[lead].Topics) || r.Sessions != reps[lead].Sessions {
			t.Fatalf("node %d: topics %+v sessions %d; leader topics %+v sessions %d", i, r.Topics, r.Sessions, reps[lead].Topics, reps[lead].Sessions)
		}
	}
	if d := reps[lead].Topics[0].Depth; d != bulk+tail {
		t.Fatalf("queue depth %d, want %d (every put)", d, bulk+tail)
	}
}

// TestKillAllAfterCompactions: snapshots taken (by traffic and by `raftmq
// snapshot`), then every broker SIGKILLed and restarted: nothing
// acknowledged is lost, nothing popped comes back, and the logs stay short.
func TestKillAllAfterCompactions(t *testing.T) {
	c := newCluster(t, 3, snapArgs...)
	cl := clusterClient(t, c)
	ctx := context.Background()
	if ok, err := cl.CreateTopic(ctx, "q"); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	putParallel(t, c, "q", 8, 600, 100)
	popped := map[string]bool{}
	for i := 0; i < 250; i++ {
		m, ok, err := cl.Pop(ctx, "q")
		if err != nil || !ok {
			t.Fatalf("pop %d: %v %v", i, ok, err)
		}
		popped[m] = true
	}
	out, err := exec.Command(c.Bin, "snapshot", "--config", c.ConfigPath, "--json").CombinedOutput()
	if err != nil || strings.Count(string(out), `"index"`) != 3 {
		t.Fatalf("raftmq snapshot: %v\n%s", err, out)
	}
	if err := c.KillAll(); err != nil {
		t.Fatal(err)
	}
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	lead, _, err := c.WaitLeader(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(lead, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.Snapshot == 0 || st.LastIndex-st.FirstIndex+1 > 220 {
		t.Fatalf("after restart: %+v; want a snapshot and at most 220 log entries", st)
	}
	perWorker := map[string]string{}
	left := 0
	for {
		m, ok, err := cl.Pop(ctx, "q")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if popped[m] {
			t.Fatalf("popped message %.20q came back", m)
		}
		w := m[:strings.IndexByte(m, '-')]
		if prev := perWorker[w]; prev >= m {
			t.Fatalf("FIFO broken for %s: %.20q after %.20q", w, m, prev)
		}
		perWorker[w] = m
		left++
	}
	if left+len(popped) != 600 {
		t.Fatalf("%d left + %d popped, want 600 acknowledged", left, len(popped))
	}
}
