package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/proccluster"
	"github.com/raftmq/raftmq/internal/testbin"
)

// bin is the raftmq binary built once for this package's tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "raftmq-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err = testbin.Build(dir, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fastArgs make elections quick on a test machine without making them
// spurious: 10 ms ticks, election timeout 150–300 ms.
var fastArgs = []string{"--tick-interval", "10ms", "--election-ticks", "15", "--heartbeat-ticks", "2"}

func newCluster(t *testing.T, n int, extra ...string) *proccluster.Cluster {
	t.Helper()
	c := startCluster(t, bin, proccluster.Options{Nodes: n, Args: append(append([]string{}, fastArgs...), extra...)})
	if _, _, err := c.WaitLeader(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// startCluster starts every node of a new cluster of binary b and, when the
// test fails, logs the tail of each node's log.
func startCluster(t *testing.T, b string, opts proccluster.Options) *proccluster.Cluster {
	t.Helper()
	c, err := proccluster.NewCluster(b, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	closeWithLogs(t, c)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	return c
}

// closeWithLogs stops every node of c when the test ends and, if it failed,
// logs the tail of each node's log.
func closeWithLogs(t *testing.T, c *proccluster.Cluster) {
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			for i := range c.Addrs {
				if b, err := os.ReadFile(c.LogPath(i)); err == nil {
					t.Logf("node %d log (tail):\n%s", i, tail(b, 4000))
				}
			}
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
