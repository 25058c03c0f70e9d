package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/client/bench"
	"github.com/raftmq/raftmq/internal/proccluster"
)

// TestCurveCLI: the real binary, three CURVE brokers: the client commands
// work with the cluster's client key and refuse to run without one, and a
// plaintext client gets no answer.
func TestCurveCLI(t *testing.T) {
	c := startCluster(t, bin, proccluster.Options{Nodes: 3, Args: fastArgs, Curve: true})
	if _, _, err := c.WaitLeader(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	raftmq := func(args ...string) (string, int) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	key := []string{"--config", c.ConfigPath, "--curve-secret-file", c.ClientSecretPath()}
	for _, args := range [][]string{
		append([]string{"topic", "create", "q"}, key...),
		append([]string{"produce", "--topic", "q", "hello"}, key...),
	} {
		if out, code := raftmq(args...); code != 0 {
			t.Fatalf("raftmq %v: exit %d\n%s", args, code, out)
		}
	}
	if out, code := raftmq(append([]string{"consume", "--topic", "q"}, key...)...); code != 0 || !strings.Contains(out, "hello") {
		t.Fatalf("consume: exit %d\n%s", code, out)
	}
	if out, code := raftmq("status", "--config", c.ConfigPath); code != 2 || !strings.Contains(out, "--curve-secret-file") {
		t.Fatalf("status without a key: exit %d\n%s", code, out)
	}
	// Plaintext, by address: the brokers do not answer.
	if out, code := raftmq("status", "--servers", c.Addrs[0].ClientAddr(), "--timeout", "1s"); code != 3 {
		t.Fatalf("plaintext status: exit %d, want 3\n%s", code, out)
	}
}

// BenchmarkCurveCost runs the bench runner against a plaintext and a CURVE
// 3-node cluster side by side, alternating short runs so both see the same
// machine load, and reports each one's puts/s and their ratio.
func BenchmarkCurveCost(b *testing.B) {
	clusters := map[string]*proccluster.Cluster{}
	for _, name := range []string{"plain", "curve"} {
		c, err := proccluster.NewCluster(bin, b.TempDir(), proccluster.Options{Nodes: 3, Curve: name == "curve"})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if err := c.StartAll(); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.WaitLeader(10 * time.Second); err != nil {
			b.Fatal(err)
		}
		clusters[name] = c
	}
	// Per round: puts/s and the brokers' CPU µs per put of each cluster.
	// The machine's load changes between rounds, so the cost is the
	// median of per-round ratios (curve over plain, run back to back).
	var rates, cpus map[string][]float64 = map[string][]float64{}, map[string][]float64{}
	var rateRatios, cpuRatios []float64
	const rounds = 5
	for round := 0; round < rounds; round++ {
		got := map[string]bench.Result{}
		for _, name := range []string{"plain", "curve"} {
			c := clusters[name]
			cfg := bench.Config{
				Clients:    []int{32},
				SizeBytes:  256,
				Messages:   max(b.N, 2000),
				Topic:      "bench",
				FsyncDir:   c.Dir,
				FsyncCount: 1,
				Seed:       uint64(round + 1),
			}
			cfg.Client.Servers = c.ClientAddrs()
			cfg.Client.Curve = c.ClientCurve()
			rep, err := bench.Run(context.Background(), cfg, nil)
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			r := rep.Results[0]
			if r.Errors > 0 {
				b.Fatalf("%s: %d puts failed: %s", name, r.Errors, r.FirstError)
			}
			got[name] = r
			rates[name] = append(rates[name], r.PutsPerSec)
			cpus[name] = append(cpus[name], r.CPUPerPut)
		}
		rateRatios = append(rateRatios, got["curve"].PutsPerSec/got["plain"].PutsPerSec)
		if got["curve"].CPUKnown && got["plain"].CPUKnown {
			cpuRatios = append(cpuRatios, got["curve"].CPUPerPut/got["plain"].CPUPerPut)
		}
	}
	median := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	b.ReportMetric(median(rates["plain"]), "plain-puts/s")
	b.ReportMetric(median(rates["curve"]), "curve-puts/s")
	b.ReportMetric(median(rateRatios), "curve/plain-puts")
	b.ReportMetric(median(cpuRatios), "curve/plain-cpu/put")
	if os.Getenv("RAFTMQ_BENCH_REPORT") != "" {
		fmt.Printf("puts/s per round: plain %.0f, curve %.0f; CPU µs/put: plain %.0f, curve %.0f\n",
			rates["plain"], rates["curve"], cpus["plain"], cpus["curve"])
	}
}
