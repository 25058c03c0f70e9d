package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/snapshot"
	"github.com/raftmq/raftmq/storage"
)

// writeVerifyDir writes a default-sized data directory: a log of
// snapshot_entries + trailing_entries PUTs of msgBytes each, all applied
// (queued: the state is as large as it gets for that log), and a snapshot
// of that state.
func writeVerifyDir(tb testing.TB, cfg config.Node, entries uint64, msgBytes int) {
	tb.Helper()
	dir, clusterID := cfg.DataDir, cfg.Cluster.ID()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		tb.Fatal(err)
	}
	r, err := storage.OpenRaftDB(filepath.Join(dir, "raft.db"), clusterID)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := storage.OpenStateDB(filepath.Join(dir, "state.db"), storage.StateOptions{MaxSessions: 100})
	if err != nil {
		tb.Fatal(err)
	}
	body := strings.Repeat("x", msgBytes)
	const batch = 1000
	for first := uint64(1); first <= entries; first += batch {
		var es []raftlog.Entry
		for i := first; i < first+batch && i <= entries; i++ {
			c := storage.Command{Op: storage.OpPut, Topic: fmt.Sprintf("t%d", i%16), Message: body}
			if i <= 16 {
				c = storage.Command{Op: storage.OpCreateTopic, Topic: fmt.Sprintf("t%d", i%16)}
			}
			es = append(es, raftlog.Entry{Index: i, Term: 1, Type: raftlog.EntryNormal, Data: storage.EncodeCommand(c)})
		}
		if err := r.Save(raftlog.HardState{Term: 1, Commit: es[len(es)-1].Index}, es); err != nil {
			tb.Fatal(err)
		}
		if _, err := s.Apply(es); err != nil {
			tb.Fatal(err)
		}
	}
	if err := r.SetConfState(raftlog.ConfState{Voters: []uint64{1, 2, 3}}); err != nil {
		tb.Fatal(err)
	}
	store, err := snapshot.Open(filepath.Join(dir, "snapshots"), clusterID, 2)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := store.Create(snapshot.Meta{ClusterID: clusterID, Index: entries, Term: 1, Voters: []uint64{1, 2, 3}}, s.WriteTo); err != nil {
		tb.Fatal(err)
	}
	if err := r.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
}

// TestVerifyCostAtDefaultLogSize reports what the start-time verification
// costs for a log of the default snapshot_entries + trailing_entries
// (11000) entries of 1 KiB, all still queued, plus a snapshot of that
// state, and checks it stays small.
func TestVerifyCostAtDefaultLogSize(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~30 MB")
	}
	cfg := testCluster(t, 3)[1]
	writeVerifyDir(t, cfg, cfg.SnapshotEntries+cfg.TrailingEntries, 1024)
	const runs = 3
	var best time.Duration
	for i := range runs {
		start := time.Now()
		rec, err := repairDataDir(cfg, zerolog.Nop())
		took := time.Since(start)
		if err != nil || rec {
			t.Fatalf("verify of a healthy directory: recover %v, err %v", rec, err)
		}
		if i == 0 || took < best {
			best = took
		}
	}
	start := time.Now()
	if rep, err := storage.Inspect(cfg.DataDir); err != nil || !rep.OK() {
		t.Fatalf("inspect: %v %q", err, rep.Problems)
	}
	t.Logf("of which raft.db + state.db (storage.Inspect): %v", time.Since(start))
	t.Logf("verify %d entries of 1 KiB + state + snapshot: best of %d runs %v", cfg.SnapshotEntries+cfg.TrailingEntries, runs, best)
	// Generous bound for -race on a loaded machine; the number to read is
	// the one logged.
	if best > 5*time.Second {
		t.Fatalf("verification took %v", best)
	}
}
