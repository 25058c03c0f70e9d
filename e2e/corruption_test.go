package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/damage"
	"github.com/raftmq/raftmq/internal/proccluster"
	"github.com/raftmq/raftmq/internal/testwait"

	"github.com/raftmq/raftmq/client"
)

// corruptMarker is the body of a message written after the last snapshot,
// so its log entry is in raft.db and, applied, in state.db.
const corruptMarker = "corrupt-me-0123456789abcdef"

func logCount(t *testing.T, c *proccluster.Cluster, i int, sub string) int {
	t.Helper()
	b, err := os.ReadFile(c.LogPath(i))
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte(sub))
}

// TestCorruptedMinorityNodeIsRepaired: a follower's raft.db, state.db or
// newest snapshot is damaged while it is down (bits flipped, truncated).
// At restart it detects the damage and moves the files aside. With damaged
// logs it reports recovering and refuses its vote: with the leader paused,
// the two other nodes elect nobody while the healthy one keeps asking.
// Once the leader resumes, the node is repaired; it then wins an election
// and drains exactly what was queued.
func TestCorruptedMinorityNodeIsRepaired(t *testing.T) {
	tests := []struct {
		name       string
		damage     func(t *testing.T, dataDir string)
		recovering bool
		logLine    string
	}{
		{"raft.db bits flipped", func(t *testing.T, dir string) {
			if damage.FlipAll(t, filepath.Join(dir, "raft.db"), []byte(corruptMarker), 0x04) == 0 {
				t.Fatal("marker not in raft.db")
			}
		}, true, "damaged data files moved aside"},
		{"state.db truncated", func(t *testing.T, dir string) {
			damage.TruncateUsedHalf(t, filepath.Join(dir, "state.db"))
		}, true, "damaged data files moved aside"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3, "--snapshot-entries", "100", "--trailing-entries", "10")
			cl := clusterClient(t, c)
			ctx := context.Background()
			for _, topic := range []string{"q", "x"} {
				if ok, err := cl.CreateTopic(ctx, topic); err != nil || !ok {
					t.Fatalf("create %s: %v %v", topic, ok, err)
				}
			}
			putN(t, cl, "q", 0, 150)
			if ok, err := cl.Put(ctx, "x", corruptMarker); err != nil || !ok {
				t.Fatalf("put marker: %v %v", ok, err)
			}
			for i := 0; i < 10; i++ {
				if m, ok, err := cl.Pop(ctx, "q"); err != nil || !ok || m != fmt.Sprintf("m%d", i) {
					t.Fatalf("pop: %q %v %v", m, ok, err)
				}
			}
			lead, _, err := c.WaitLeader(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			lst, err := c.Status(lead, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			f, o := (lead+1)%3, (lead+2)%3
			testwait.For(t, 10*time.Second, "the follower to apply everything", func() bool {
				st, err := c.Status(f, 200*time.Millisecond)
				return err == nil && st.Applied >= lst.Commit && st.Snapshot > 0
			})
			if err := c.Kill(f); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, c.DataDir(f))
			if tc.recovering {
				// Any quorum now needs f: freeze the leader.
				if err := c.Pause(lead); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Start(f); err != nil {
				t.Fatal(err)
			}
			testwait.For(t, 10*time.Second, "the damage to be reported", func() bool {
				return logCount(t, c, f, tc.logLine) == 1
			})
			aside, err := filepath.Glob(filepath.Join(c.DataDir(f), "damaged-*"))
			if err != nil || len(aside) != 1 {
				t.Fatalf("damaged dirs %v (%v), want one", aside, err)
			}
			if tc.recovering {
				st, err := c.Status(f, time.Second)
				if err != nil || !st.Recovering {
					t.Fatalf("damaged node status %+v (%v), want recovering", st, err)
				}
				// o asks for votes every election timeout; f refuses.
				testwait.For(t, 20*time.Second, "the recovering node to refuse three vote requests", func() bool {
					return logCount(t, c, f, ": recovering") >= 3
				})
				for _, i := range []int{f, o} {
					st, err := c.Status(i, time.Second)
					if err != nil || st.Role == "Leader" || st.LeaderID != nil && *st.LeaderID != lead {
						t.Fatalf("node %d status %+v (%v): a leader without a healthy quorum", i, st, err)
					}
				}
				if err := c.Resume(lead); err != nil {
					t.Fatal(err)
				}
			}
			testwait.For(t, 20*time.Second, "the damaged node to catch up", func() bool {
				st, err := c.Status(f, 200*time.Millisecond)
				return err == nil && !st.Recovering && st.Applied >= lst.Commit
			})
			// Once, or twice when the leader's demotion (decision 25)
			// reached it after it had caught up.
			if n := logCount(t, c, f, "recovered: caught up"); tc.recovering && (n == 0 || n > 2) {
				t.Fatalf("%d 'recovered' lines in the repaired node's log, want one or two", n)
			}
			makeLeaderByPausing(t, c, f)
			fc, err := client.New(client.Options{Servers: []string{c.Addrs[f].ClientAddr()}, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer fc.Close()
			topics, err := fc.ListTopics(ctx)
			if err != nil || strings.Join(topics, ",") != "q,x" {
				t.Fatalf("topics on the repaired leader: %v %v", topics, err)
			}
			drainExpect(t, fc, "q", 10, 150)
			if m, ok, err := fc.Pop(ctx, "x"); err != nil || !ok || m != corruptMarker {
				t.Fatalf("pop x: %q %v %v", m, ok, err)
			}
		})
	}
}

// makeLeaderByPausing keeps two of three nodes running, pausing whoever
// else wins, until f wins (it can only if its log is up to date); then it
// resumes every paused node.
func makeLeaderByPausing(t *testing.T, c *proccluster.Cluster, f int) {
	t.Helper()
	paused := -1
	defer func() {
		if paused >= 0 {
			if err := c.Resume(paused); err != nil {
				t.Fatal(err)
			}
		}
	}()
	for attempt := 0; ; attempt++ {
		if attempt == 20 {
			t.Fatal("the repaired node never won an election in 20 tries")
		}
		l, _, err := c.WaitLeader(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if l == f {
			return
		}
		if paused >= 0 {
			if err := c.Resume(paused); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Pause(l); err != nil {
			t.Fatal(err)
		}
		paused = l
		testwait.For(t, 10*time.Second, "a new leader", func() bool {
			nl, _, err := c.WaitLeader(300 * time.Millisecond)
			return err == nil && nl != l
		})
	}
}
