package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/client/bench"
	"github.com/raftmq/raftmq/internal/proccluster"
)

// BenchmarkMembershipChange measures, on a 3-node cluster (default timing)
// holding RAFTMQ_BENCH_QUEUED messages of 256 bytes (default 100000):
//
//   - catchup-s: from `raftmq member add` of an empty --join node to its
//     exit once the node is a voter (snapshot, then log);
//   - puts/s-steady and puts/s-during-change: 32 producers for the same
//     time without a change, then while a second new node is added and an
//     original one removed, in the same run.
//
// One iteration is one trial: -benchtime 1x.
func BenchmarkMembershipChange(b *testing.B) {
	queued := 100000
	if v := os.Getenv("RAFTMQ_BENCH_QUEUED"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("RAFTMQ_BENCH_QUEUED=%q: want a positive count", v)
		}
		queued = n
	}
	for range b.N {
		c, err := proccluster.NewCluster(bin, b.TempDir(), proccluster.Options{Nodes: 3, ClusterID: "bench-membership"})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.StartAll(); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.WaitLeader(10 * time.Second); err != nil {
			b.Fatal(err)
		}
		load := func(msgs int, d time.Duration) float64 {
			cfg := bench.Config{Clients: []int{32}, SizeBytes: 256, Messages: msgs, Duration: d, Topic: "q", FsyncDir: c.Dir, FsyncCount: 1, Seed: 1}
			cfg.Client.Servers = c.ClientAddrs()[:3]
			rep, err := bench.Run(context.Background(), cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			return rep.Results[0].PutsPerSec
		}
		load(queued, 0)

		join := func() int {
			id, err := c.AddNode("--join")
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Start(id); err != nil {
				b.Fatal(err)
			}
			return id
		}
		add := func(id int) time.Duration {
			start := time.Now()
			out, err := runCLI("member", "add", "--id", fmt.Sprint(id), "--config", c.ConfigPath, "--catch-up-timeout", "5m")
			if err != nil {
				b.Fatalf("member add --id %d: %v\n%s", id, err, out)
			}
			return time.Since(start)
		}
		took := add(join())

		const window = 10 * time.Second
		steady := load(0, window)
		n4 := join()
		done := make(chan error, 1)
		go func() {
			if out, err := runCLI("member", "add", "--id", fmt.Sprint(n4), "--config", c.ConfigPath, "--catch-up-timeout", "5m"); err != nil {
				done <- fmt.Errorf("member add: %v\n%s", err, out)
				return
			}
			out, err := runCLI("member", "remove", "--id", "2", "--config", c.ConfigPath)
			if err != nil {
				err = fmt.Errorf("member remove: %v\n%s", err, out)
			}
			done <- err
		}()
		during := load(0, window)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(took.Seconds(), "catchup-s")
		b.ReportMetric(float64(queued), "queued")
		b.ReportMetric(steady, "puts/s-steady")
		b.ReportMetric(during, "puts/s-during-change")
		c.Close()
	}
}

func runCLI(args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
