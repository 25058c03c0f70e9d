package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/damage"
	"github.com/raftmq/raftmq/internal/testwait"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/config"
)

// lineLog is a zerolog writer that keeps every line, for tests that wait
// on what a node logged.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *lineLog) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// startLogged starts a broker whose info-level log goes to lines.
func startLogged(t *testing.T, cfg config.Node, lines *lineLog) *running {
	t.Helper()
	log := zerolog.New(lines).Level(zerolog.InfoLevel)
	b, err := New(cfg, log)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	b.rebuildMinFreeBytes = 64 << 10
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{b: b, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- b.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// damagedDirs lists <dataDir>/damaged-* directories.
func damagedDirs(t *testing.T, dataDir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dataDir, damagedDirPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// corruptMarker is a message body written after the last snapshot, so its
// entry is in raft.db's log (and, applied, in state.db).
const corruptMarker = "corrupt-me-0123456789abcdef"

// TestCorruptedMinorityNodeRepairs: a follower's raft.db (a flipped bit in
// an entry) or state.db (truncated) is damaged while it is stopped. At
// restart it detects the damage, moves its data aside, reports recovering
// and refuses its vote: with the third node down, the healthy node and the
// recovering one elect nobody although the healthy one keeps asking. Once
// the third node is back, a leader repairs it; it then wins an election
// and serves identical topics, queues and sessions.
func TestCorruptedMinorityNodeRepairs(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dataDir string)
		file   string
	}{
		{"raft.db entry bit flipped", func(t *testing.T, dir string) {
			if damage.FlipAll(t, filepath.Join(dir, "raft.db"), []byte(corruptMarker), 0x10) == 0 {
				t.Fatal("marker not found in raft.db")
			}
		}, "raft.db"},
		{"state.db truncated", func(t *testing.T, dir string) {
			damage.TruncateUsedHalf(t, filepath.Join(dir, "state.db"))
		}, "state.db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c := newSnapCluster(t, 3, 100, 10, 4<<10)
			lead := c.leader()
			for _, topic := range []string{"zeta", "alpha"} {
				c.must(lead, fmt.Sprintf(`{"type":"topic","method":"PUT","topic":%q}`, topic))
			}
			var reqs []string
			for i := 0; i < 200; i++ {
				reqs = append(reqs, putReq([]string{"zeta", "alpha"}[i%2], fmt.Sprintf("m%03d", i)))
			}
			c.pipeline(lead, reqs)
			// Every node snapshots now, so the marker written next stays in
			// every node's log: the next automatic snapshot is 100 entries
			// away (a follower's own earlier one could otherwise fall due
			// right after the marker and compact it away).
			for i := range c.cfgs {
				c.waitApplied(i, lead)
				c.must(i, snapshotReq)
			}
			c.must(lead, putReq("alpha", corruptMarker))
			first := c.must(lead, `{"type":"message","method":"GET","topic":"zeta","client_id":"c1","seq":1}`)
			c.pipeline(lead, slices.Repeat([]string{popReq("alpha")}, 10))
			f := (lead + 1) % 3
			o := (lead + 2) % 3
			c.waitApplied(f, lead)
			wantTopics := c.must(lead, `{"type":"topic","method":"GET"}`)["topics"]
			logStep(t, start, "written")

			c.stop(f)
			tc.damage(t, c.cfgs[f].DataDir)
			// Leave o alone: any quorum now needs f's vote. (Stopping
			// gracefully, the leader hands over to o, which steps down
			// for lack of a quorum: wait for that, so f cannot catch up
			// from it.)
			c.stop(lead)
			testwait.For(t, 20*time.Second, "the lone node to have no leader", func() bool {
				st := c.clients[o].status()
				return st.Role != "Leader" && st.LeaderID == nil
			})
			lines := &lineLog{}
			c.nodes[f] = startLogged(t, c.cfgs[f], lines)
			c.clients[f] = dialRaw(t, c.cfgs[f].Self().ClientAddr())
			if n := lines.count("damaged data files moved aside"); n != 1 || lines.count(tc.file) == 0 {
				t.Fatalf("want one error naming %s; log:\n%s", tc.file, strings.Join(lines.lines, ""))
			}
			aside := damagedDirs(t, c.cfgs[f].DataDir)
			if len(aside) != 1 {
				t.Fatalf("damaged dirs %v, want one", aside)
			}
			if _, err := os.Stat(filepath.Join(aside[0], tc.file)); err != nil {
				t.Fatalf("damaged %s not kept aside: %v", tc.file, err)
			}
			if st := c.clients[f].status(); !st.Recovering {
				t.Fatalf("restarted damaged node status %+v, want recovering", st)
			}
			// o campaigns (pre-votes) every election timeout; f refuses.
			testwait.For(t, 20*time.Second, "the recovering node to refuse three vote requests", func() bool {
				return lines.count(": recovering") >= 3
			})
			for _, i := range []int{f, o} {
				if st := c.clients[i].status(); st.Role == "Leader" || st.LeaderID != nil {
					t.Fatalf("node %d status %+v: a leader without a healthy quorum", i, st)
				}
			}
			if !c.clients[f].status().Recovering {
				t.Fatal("node recovered without a leader")
			}
			logStep(t, start, "no leader while recovering")

			c.start(lead)
			testwait.For(t, 20*time.Second, "the damaged node to be repaired", func() bool {
				return !c.clients[f].status().Recovering
			})
			// Once, or twice when the leader's demotion (decision 25)
			// reached it after it had caught up: it recovers again until
			// promoted back.
			if n := lines.count("recovered: caught up"); n == 0 || n > 2 {
				t.Fatalf("%d 'recovered' lines in the log, want one or two", n)
			}
			c.waitApplied(f, c.leader())
			logStep(t, start, "repaired")

			c.makeLeader(f)
			logStep(t, start, "repaired node leads")
			if got := c.must(f, `{"type":"topic","method":"GET"}`)["topics"]; fmt.Sprint(got) != fmt.Sprint(wantTopics) {
				t.Fatalf("topics on the repaired node: %v, want %v", got, wantTopics)
			}
			if got := c.must(f, `{"type":"message","method":"GET","topic":"zeta","client_id":"c1","seq":1}`); got["message"] != first["message"] {
				t.Fatalf("session retry on the repaired node answered %v, first answer was %v", got, first)
			}
			want := map[string][]string{}
			for i := 0; i < 200; i++ {
				topic := []string{"zeta", "alpha"}[i%2]
				want[topic] = append(want[topic], fmt.Sprintf("m%03d", i))
			}
			want["alpha"] = append(want["alpha"], corruptMarker)
			want["zeta"] = want["zeta"][1:]
			want["alpha"] = want["alpha"][10:]
			c.drainExpect(t, f, want)
		})
	}
}

// TestStartWithDamage: broker.New on a damaged data directory, for each
// kind of damage, in a 3-node and a 1-node cluster.
func TestStartWithDamage(t *testing.T) {
	// Templates: a data directory of a 3-node cluster's follower and of a
	// one-node cluster, each with a compacted log and a state. (Snapshot
	// files are not kept, so there are none to damage: decision 26.)
	c := newSnapCluster(t, 3, 100, 10, 4<<10)
	lead := c.leader()
	c.must(lead, `{"type":"topic","method":"PUT","topic":"q"}`)
	var reqs []string
	for i := 0; i < 50; i++ {
		reqs = append(reqs, putReq("q", fmt.Sprintf("m%03d", i)))
	}
	c.pipeline(lead, reqs)
	f := (lead + 1) % 3
	c.waitApplied(f, lead)
	c.must(f, snapshotReq)
	c.must(lead, putReq("q", corruptMarker))
	c.waitApplied(f, lead)
	for i := range c.cfgs {
		c.stop(i)
	}
	one := testCluster(t, 1)[0]
	one.SnapshotEntries, one.TrailingEntries = 100, 10
	r := startBroker(t, one)
	cl := dialRaw(t, one.Self().ClientAddr())
	testwait.For(t, 5*time.Second, "the one node to lead", func() bool { return cl.status().Role == "Leader" })
	cl.do(`{"type":"topic","method":"PUT","topic":"q"}`)
	for _, req := range reqs {
		cl.do(req)
	}
	cl.do(snapshotReq)
	cl.do(putReq("q", corruptMarker))
	r.stop(t)

	tests := []struct {
		name       string
		damage     func(t *testing.T, dir string)
		recovering bool // in the 3-node cluster; the 1-node one refuses
		moved      []string
		named      string // the damaged file the error names
	}{
		{"raft.db entry bit flipped", func(t *testing.T, dir string) {
			if damage.FlipAll(t, filepath.Join(dir, "raft.db"), []byte(corruptMarker), 0x10) == 0 {
				t.Fatal("marker not in raft.db")
			}
		}, true, []string{"raft.db", "state.db", "snapshots"}, "raft.db"},
		{"raft.db truncated", func(t *testing.T, dir string) { damage.TruncateUsedHalf(t, filepath.Join(dir, "raft.db")) },
			true, []string{"raft.db", "state.db", "snapshots"}, "raft.db"},
		{"raft.db garbage", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "raft.db"), bytes.Repeat([]byte("garbage!"), 8192), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true, []string{"raft.db", "state.db", "snapshots"}, "raft.db"},
		{"state.db message byte flipped", func(t *testing.T, dir string) {
			if damage.FlipAll(t, filepath.Join(dir, "state.db"), []byte(corruptMarker), 0x10) == 0 {
				t.Fatal("marker not in state.db")
			}
		}, true, []string{"raft.db", "state.db", "snapshots"}, "state.db"},
		{"state.db truncated", func(t *testing.T, dir string) { damage.TruncateUsedHalf(t, filepath.Join(dir, "state.db")) },
			true, []string{"raft.db", "state.db", "snapshots"}, "state.db"},
		// Lost, not damaged: the log is compacted past it and no snapshot
		// file is kept to rebuild it from, so only a peer can.
		{"state.db deleted", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "state.db")); err != nil {
				t.Fatal(err)
			}
		}, true, []string{"raft.db", "state.db"}, "state.db"},
	}
	copyDir := func(t *testing.T, src string) string {
		dst := filepath.Join(t.TempDir(), "data")
		if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := c.cfgs[f]
			cfg.DataDir = copyDir(t, c.cfgs[f].DataDir)
			tc.damage(t, cfg.DataDir)
			lines := &lineLog{}
			b, err := New(cfg, zerolog.New(lines))
			if err != nil {
				t.Fatalf("New on a damaged 3-node follower: %v", err)
			}
			recovering := b.raft.Recovering() && b.core.Status().Recovering
			b.closeStores()
			if recovering != tc.recovering {
				t.Fatalf("recovering %v, want %v; log:\n%s", recovering, tc.recovering, strings.Join(lines.lines, ""))
			}
			aside := damagedDirs(t, cfg.DataDir)
			if len(aside) != 1 {
				t.Fatalf("damaged dirs %v, want one", aside)
			}
			for _, name := range tc.moved {
				if _, err := os.Stat(filepath.Join(aside[0], name)); err != nil {
					t.Fatalf("%s not moved aside: %v", name, err)
				}
			}
			named := tc.named
			if lines.count(`"level":"error"`) != 1 || lines.count(filepath.Join(cfg.DataDir, named)) == 0 {
				t.Fatalf("want one error line naming %s, log:\n%s", named, strings.Join(lines.lines, ""))
			}

			if !tc.recovering {
				return // a damaged snapshot in a one-node cluster is just moved aside too
			}
			cfg1 := one
			cfg1.DataDir = copyDir(t, one.DataDir)
			tc.damage(t, cfg1.DataDir)
			_, err = New(cfg1, zerolog.Nop())
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "restore the data directory from a backup") {
				t.Fatalf("New on a damaged one-node cluster: %v, want ErrDamaged asking for a backup", err)
			}
			if len(damagedDirs(t, cfg1.DataDir)) != 0 {
				t.Fatal("one-node cluster moved its only copy aside")
			}
		})
	}
}
