package storage

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

const testCluster = "c0ffee"

func ents(lo, hi, term uint64) []raftlog.Entry {
	var out []raftlog.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, raftlog.Entry{Index: i, Term: term, Type: raftlog.EntryNormal, Data: []byte(fmt.Sprintf("entry-%d-term-%d", i, term))})
	}
	return out
}

func openTestRaftDB(t *testing.T, path string) *RaftDB {
	t.Helper()
	r, err := OpenRaftDB(path, testCluster)
	if err != nil {
		t.Fatalf("OpenRaftDB(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// raftView is everything observable through raftlog.Storage.
type raftView struct {
	HS          raftlog.HardState
	Conf        raftlog.ConfState
	First, Last uint64
	Snap        raftlog.SnapshotMeta
	Ents        []raftlog.Entry
	BaseTerm    uint64
}

func viewOf(t *testing.T, r *RaftDB) raftView {
	t.Helper()
	var v raftView
	var err error
	if v.HS, v.Conf, err = r.InitialState(); err != nil {
		t.Fatal(err)
	}
	v.First, _ = r.FirstIndex()
	v.Last, _ = r.LastIndex()
	v.Snap, _ = r.Snapshot()
	if v.BaseTerm, err = r.Term(v.First - 1); err != nil {
		t.Fatalf("Term(first-1=%d): %v", v.First-1, err)
	}
	if v.Ents, err = r.Entries(v.First, v.Last+1, math.MaxUint64); err != nil {
		t.Fatalf("Entries(%d, %d): %v", v.First, v.Last+1, err)
	}
	for _, e := range v.Ents {
		if term, err := r.Term(e.Index); err != nil || term != e.Term {
			t.Fatalf("Term(%d) = %d, %v; entry says %d", e.Index, term, err, e.Term)
		}
	}
	return v
}

func TestRaftDBSaveRoundTrip(t *testing.T) {
	r := openTestRaftDB(t, filepath.Join(t.TempDir(), "raft.db"))
	if v := viewOf(t, r); v.First != 1 || v.Last != 0 || len(v.Ents) != 0 || !v.HS.IsEmpty() {
		t.Fatalf("fresh file: %+v", v)
	}
	hs := raftlog.HardState{Term: 2, Vote: 3, Commit: 4}
	if err := r.Save(hs, ents(1, 5, 2)); err != nil {
		t.Fatal(err)
	}
	// An empty HardState leaves the stored one unchanged.
	if err := r.Save(raftlog.HardState{}, ents(6, 6, 2)); err != nil {
		t.Fatal(err)
	}
	v := viewOf(t, r)
	want := raftView{HS: hs, First: 1, Last: 6, Ents: ents(1, 6, 2)}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %+v\nwant %+v", v, want)
	}
	tests := []struct {
		lo, hi, maxBytes uint64
		wantN            int
		wantErr          error
	}{
		{1, 7, math.MaxUint64, 6, nil},
		{2, 4, math.MaxUint64, 2, nil},
		{3, 3, 0, 0, nil},
		{1, 7, 0, 1, nil},  // at least one entry
		{1, 7, 35, 2, nil}, // entries are 17 bytes: two fit in 35
		{1, 8, math.MaxUint64, 0, raftlog.ErrUnavailable},
		{0, 3, math.MaxUint64, 0, raftlog.ErrCompacted},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("lo=%d,hi=%d,max=%d", tc.lo, tc.hi, tc.maxBytes), func(t *testing.T) {
			got, err := r.Entries(tc.lo, tc.hi, tc.maxBytes)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if len(got) != tc.wantN {
				t.Fatalf("got %d entries, want %d", len(got), tc.wantN)
			}
			for i, e := range got {
				if !reflect.DeepEqual(e, want.Ents[tc.lo-1+uint64(i)]) {
					t.Fatalf("entry %d = %+v", i, e)
				}
			}
		})
	}
	if _, err := r.Term(7); !errors.Is(err, raftlog.ErrUnavailable) {
		t.Fatalf("Term(7) err = %v", err)
	}
}

func TestRaftDBConflictingSuffixReplaced(t *testing.T) {
	tests := []struct {
		name string
		save []raftlog.Entry
		want []raftlog.Entry
	}{
		{"replace middle", ents(3, 4, 2), append(ents(1, 2, 1), ents(3, 4, 2)...)},
		{"replace from first", ents(1, 1, 3), ents(1, 1, 3)},
		{"replace and extend", ents(4, 9, 2), append(ents(1, 3, 1), ents(4, 9, 2)...)},
		{"replace last only", ents(5, 5, 2), append(ents(1, 4, 1), ents(5, 5, 2)...)},
		{"append", ents(6, 7, 1), ents(1, 7, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "raft.db")
			r := openTestRaftDB(t, path)
			if err := r.Save(raftlog.HardState{Term: 1}, ents(1, 5, 1)); err != nil {
				t.Fatal(err)
			}
			if err := r.Save(raftlog.HardState{}, tc.save); err != nil {
				t.Fatal(err)
			}
			if got := viewOf(t, r).Ents; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("after save: %+v\nwant %+v", got, tc.want)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			r2 := openTestRaftDB(t, path)
			if got := viewOf(t, r2).Ents; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("after reopen: %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestRaftDBSaveGapPanics(t *testing.T) {
	r := openTestRaftDB(t, filepath.Join(t.TempDir(), "raft.db"))
	if err := r.Save(raftlog.HardState{}, ents(1, 2, 1)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]raftlog.Entry{ents(4, 4, 1), {ents(3, 3, 1)[0], ents(5, 5, 1)[0]}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("Save(%v) did not panic", bad)
				}
			}()
			_ = r.Save(raftlog.HardState{}, bad)
		}()
	}
}

// fillRaftDB writes a state that uses every record of raft.db.
func fillRaftDB(t *testing.T, r *RaftDB) {
	t.Helper()
	if err := r.Save(raftlog.HardState{Term: 3, Vote: 2, Commit: 8}, ents(1, 10, 3)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetConfState(raftlog.ConfState{Voters: []uint64{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateSnapshot(6, raftlog.ConfState{Voters: []uint64{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Compact(4); err != nil {
		t.Fatal(err)
	}
}

func TestRaftDBReopenSameState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	r := openTestRaftDB(t, path)
	fillRaftDB(t, r)
	before := viewOf(t, r)
	if before.First != 5 || before.Last != 10 || before.Snap.Index != 6 || len(before.Conf.Voters) != 3 {
		t.Fatalf("unexpected state: %+v", before)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := openTestRaftDB(t, path)
	if after := viewOf(t, r2); !reflect.DeepEqual(before, after) {
		t.Fatalf("reopen changed state:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestRaftDBCrashCopy simulates a power cut: the file is copied while the
// database is open (no Close, so nothing beyond the committed transactions
// reaches it), and the copy must open to exactly the committed state.
func TestRaftDBCrashCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "raft.db")
	r := openTestRaftDB(t, path)
	fillRaftDB(t, r)
	want := viewOf(t, r)
	crashed := filepath.Join(dir, "crashed.db")
	copyFile(t, path, crashed)
	// Writes after the "crash" must not show up in the copy.
	if err := r.Save(raftlog.HardState{Term: 9, Vote: 1}, ents(11, 12, 9)); err != nil {
		t.Fatal(err)
	}
	r2 := openTestRaftDB(t, crashed)
	if got := viewOf(t, r2); !reflect.DeepEqual(got, want) {
		t.Fatalf("crash copy:\ngot  %+v\nwant %+v", got, want)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRaftDBCompact(t *testing.T) {
	r := openTestRaftDB(t, filepath.Join(t.TempDir(), "raft.db"))
	if err := r.Save(raftlog.HardState{Term: 2}, append(ents(1, 3, 1), ents(4, 6, 2)...)); err != nil {
		t.Fatal(err)
	}
	if err := r.Compact(3); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		call    func() error
		wantErr error
	}{
		{"term of base", func() error { term, err := r.Term(3); return expect(term, 1, err) }, nil},
		{"term below base", func() error { _, err := r.Term(2); return err }, raftlog.ErrCompacted},
		{"entries from base", func() error { _, err := r.Entries(3, 5, math.MaxUint64); return err }, raftlog.ErrCompacted},
		{"entries after base", func() error { e, err := r.Entries(4, 7, math.MaxUint64); return expect(uint64(len(e)), 3, err) }, nil},
		{"first index", func() error { f, err := r.FirstIndex(); return expect(f, 4, err) }, nil},
		{"compact again", func() error { return r.Compact(3) }, raftlog.ErrCompacted},
		{"compact beyond last", func() error { return r.Compact(7) }, raftlog.ErrUnavailable},
		{"snapshot recorded at compaction point", func() error { m, err := r.Snapshot(); return expect(m.Index*10+m.Term, 31, err) }, nil},
		{"create snapshot beyond last", func() error { _, err := r.CreateSnapshot(7, raftlog.ConfState{}); return err }, raftlog.ErrUnavailable},
		{"create stale snapshot", func() error { _, err := r.CreateSnapshot(3, raftlog.ConfState{}); return err }, raftlog.ErrSnapOutOfDate},
		{"create snapshot", func() error {
			m, err := r.CreateSnapshot(5, raftlog.ConfState{})
			return expect(m.Index*10+m.Term, 52, err)
		}, nil},
		{"compact everything", func() error { return r.Compact(6) }, nil},
		{"snapshot follows full compaction", func() error { m, err := r.Snapshot(); return expect(m.Index*10+m.Term, 62, err) }, nil},
		{"empty log keeps last", func() error { l, err := r.LastIndex(); return expect(l, 6, err) }, nil},
		{"term of last after full compact", func() error { term, err := r.Term(6); return expect(term, 2, err) }, nil},
		{"append after full compact", func() error { return r.Save(raftlog.HardState{}, ents(7, 7, 2)) }, nil},
	}
	for _, tc := range tests {
		if err := tc.call(); !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
			t.Fatalf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
		}
	}
}

var errUnexpected = errors.New("unexpected value")

func expect(got, want uint64, err error) error {
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: got %d, want %d", errUnexpected, got, want)
	}
	return nil
}

func TestRaftDBApplySnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	r := openTestRaftDB(t, path)
	if err := r.Save(raftlog.HardState{Term: 1, Vote: 1, Commit: 3}, ents(1, 5, 1)); err != nil {
		t.Fatal(err)
	}
	meta := raftlog.SnapshotMeta{Index: 20, Term: 4, Conf: raftlog.ConfState{Voters: []uint64{1, 2, 3}}}
	if err := r.ApplySnapshot(meta); err != nil {
		t.Fatal(err)
	}
	want := raftView{
		HS: raftlog.HardState{Term: 1, Vote: 1, Commit: 3}, Conf: meta.Conf,
		First: 21, Last: 20, Snap: meta, BaseTerm: 4,
	}
	if got := viewOf(t, r); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if err := r.ApplySnapshot(raftlog.SnapshotMeta{Index: 20, Term: 4}); !errors.Is(err, raftlog.ErrSnapOutOfDate) {
		t.Fatalf("stale snapshot: err = %v", err)
	}
	if err := r.Save(raftlog.HardState{Term: 4, Commit: 21}, ents(21, 22, 4)); err != nil {
		t.Fatal(err)
	}
	want.HS, want.Last, want.Ents = raftlog.HardState{Term: 4, Commit: 21}, 22, ents(21, 22, 4)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := viewOf(t, openTestRaftDB(t, path)); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen got %+v\nwant %+v", got, want)
	}
}

func TestRaftDBClusterMismatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	r := openTestRaftDB(t, path)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := OpenRaftDB(path, "other-cluster")
	if !errors.Is(err, ErrClusterMismatch) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), testCluster) {
		t.Fatalf("err = %v, want ErrClusterMismatch naming the file and both ids", err)
	}
	if _, err := OpenRaftDB(path, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty cluster id: err = %v", err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func removeFile(path string) error { return os.Remove(path) }

func TestRaftDBApplySnapshotWithoutVotersKeepsMembership(t *testing.T) {
	r := openTestRaftDB(t, filepath.Join(t.TempDir(), "raft.db"))
	voters := raftlog.ConfState{Voters: []uint64{1, 2}}
	if err := r.SetConfState(voters); err != nil {
		t.Fatal(err)
	}
	if err := r.ApplySnapshot(raftlog.SnapshotMeta{Index: 5, Term: 2}); err != nil {
		t.Fatal(err)
	}
	if _, cs, _ := r.InitialState(); !reflect.DeepEqual(cs, voters) {
		t.Fatalf("membership = %v, want %v", cs, voters)
	}
}

// TestRaftDBCompactInBatches compacts a log longer than one compaction
// transaction, across a term change inside it, and checks the base, the
// snapshot recorded and what a reopen sees.
func TestRaftDBCompactInBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	r := openTestRaftDB(t, path)
	const mid, last = compactBatchEntries + 5, 2*compactBatchEntries + 100
	if err := r.Save(raftlog.HardState{Term: 3}, append(ents(1, mid, 2), ents(mid+1, last, 3)...)); err != nil {
		t.Fatal(err)
	}
	target := uint64(2*compactBatchEntries + 50)
	if err := r.Compact(target); err != nil {
		t.Fatal(err)
	}
	check := func(r *RaftDB, when string) {
		t.Helper()
		first, err := r.FirstIndex()
		if err != nil || first != target+1 {
			t.Fatalf("%s: FirstIndex = %d, %v; want %d", when, first, err, target+1)
		}
		if term, err := r.Term(target); err != nil || term != 3 {
			t.Fatalf("%s: Term(base %d) = %d, %v; want 3", when, target, term, err)
		}
		if m, err := r.Snapshot(); err != nil || m.Index != target || m.Term != 3 {
			t.Fatalf("%s: Snapshot = %+v, %v; want %d/3", when, m, err, target)
		}
		if e, err := r.Entries(target+1, last+1, math.MaxUint64); err != nil || len(e) != int(last-target) {
			t.Fatalf("%s: Entries after the base = %d, %v; want %d", when, len(e), err, last-target)
		}
	}
	check(r, "after Compact")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	check(openTestRaftDB(t, path), "after a reopen")
}
