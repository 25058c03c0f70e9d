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

// BenchmarkVerifyAtDefaultLogSize measures the start-time verification of a
// data directory with a log of the default snapshot_entries +
// trailing_entries (11000) entries of 1 KiB, all still queued, plus a
// snapshot of that state: the whole of repairDataDir on a healthy directory
// (ns/op), and storage.Inspect's share of it (inspect-ns/op). A benchmark,
// not a timed test: the figure depends on the machine.
func BenchmarkVerifyAtDefaultLogSize(b *testing.B) {
	cfg := testCluster(b, 3)[1]
	writeVerifyDir(b, cfg, cfg.SnapshotEntries+cfg.TrailingEntries, 1024)
	var inspect time.Duration
	b.ResetTimer()
	for range b.N {
		rec, err := repairDataDir(cfg, zerolog.Nop())
		if err != nil || rec {
			b.Fatalf("verify of a healthy directory: recover %v, err %v", rec, err)
		}
		start := time.Now()
		if rep, err := storage.Inspect(cfg.DataDir); err != nil || !rep.OK() {
			b.Fatalf("inspect: %v %q", err, rep.Problems)
		}
		inspect += time.Since(start)
	}
	b.ReportMetric(float64(inspect.Nanoseconds())/float64(b.N), "inspect-ns/op")
}

// TestVerifyAcceptsHealthyDefaultSizedDir: the start-time verification of a
// default-sized, healthy data directory finds nothing to repair.
func TestVerifyAcceptsHealthyDefaultSizedDir(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~30 MB")
	}
	cfg := testCluster(t, 3)[1]
	writeVerifyDir(t, cfg, cfg.SnapshotEntries+cfg.TrailingEntries, 1024)
	if rec, err := repairDataDir(cfg, zerolog.Nop()); err != nil || rec {
		t.Fatalf("verify of a healthy directory: recover %v, err %v", rec, err)
	}
}
