package storage

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

// bloatState fills a topic with n messages of size bytes and pops all but
// keep of them, leaving a file mostly made of free pages.
func bloatState(t *testing.T, s *StateDB, n, keep, size int) uint64 {
	t.Helper()
	msg := strings.Repeat("x", size)
	steps := []step{{cmd: create("q"), want: ok}}
	for range n {
		steps = append(steps, step{cmd: put("q", msg), want: ok})
	}
	for range n - keep {
		steps = append(steps, step{cmd: pop("q"), want: got(msg)})
	}
	return runSteps(t, s, 1, 200, steps)
}

func TestStateCopyCompactAndReplace(t *testing.T) {
	dir := t.TempDir()
	s := openTestStateDB(t, filepath.Join(dir, "state.db"), 10)
	next := bloatState(t, s, 4000, 10, 1024)
	before, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if !before.Bloated(1 << 20) {
		t.Fatalf("after popping 3990 of 4000 messages the file is not reported bloated: %+v", before)
	}
	wantTopics, _ := s.TopicDepths()
	cp := filepath.Join(dir, "state.db.compact")
	applied, err := s.CopyCompact(context.Background(), cp)
	if err != nil || applied != next-1 {
		t.Fatalf("CopyCompact = %d, %v; want applied %d", applied, err, next-1)
	}
	if err := s.Replace(cp); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	after, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if after.FileBytes*4 > before.FileBytes {
		t.Fatalf("replaced file is %d bytes, the bloated one %d: want at most a quarter", after.FileBytes, before.FileBytes)
	}
	if got, _ := s.TopicDepths(); !reflect.DeepEqual(got, wantTopics) || s.AppliedIndex() != next-1 {
		t.Fatalf("after Replace: topics %+v applied %d; want %+v applied %d", got, s.AppliedIndex(), wantTopics, next-1)
	}
	// The swapped-in file keeps working, FIFO order intact.
	runSteps(t, s, next, 1, []step{{cmd: pop("q"), want: got(strings.Repeat("x", 1024))}, {cmd: put("q", "tail"), want: ok}})
	if _, err := os.Stat(cp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the compact copy was not moved: %v", err)
	}
}

func TestStateCopyCompactCancelled(t *testing.T) {
	dir := t.TempDir()
	s := openTestStateDB(t, filepath.Join(dir, "state.db"), 10)
	bloatState(t, s, 3000, 3000, 100)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cp := filepath.Join(dir, "copy")
	if _, err := s.CopyCompact(ctx, cp); !errors.Is(err, context.Canceled) {
		t.Fatalf("CopyCompact with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(cp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a cancelled copy left %s behind: %v", cp, err)
	}
}

func TestRaftDBRebuild(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "raft.db")
	r := openTestRaftDB(t, path)
	big := ents(1, 6000, 1)
	for i := range big {
		big[i].Data = []byte(strings.Repeat("y", 1000))
	}
	for lo := 0; lo < len(big); lo += 500 {
		if err := r.Save(raftlog.HardState{Term: 1}, big[lo:lo+500]); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Compact(5990); err != nil {
		t.Fatal(err)
	}
	before, _ := r.Stats()
	if !before.Bloated(1 << 20) {
		t.Fatalf("compacted log not reported bloated: %+v", before)
	}
	want := viewOf(t, r)
	if err := r.Rebuild(); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	after, _ := r.Stats()
	if after.FileBytes*10 > before.FileBytes {
		t.Fatalf("rebuilt raft.db is %d bytes, was %d: want at most a tenth", after.FileBytes, before.FileBytes)
	}
	if got := viewOf(t, r); !reflect.DeepEqual(got, want) {
		t.Fatalf("after Rebuild: %+v\nwant %+v", got, want)
	}
	if err := r.Save(raftlog.HardState{Term: 2}, ents(6001, 6001, 2)); err != nil {
		t.Fatalf("Save after Rebuild: %v", err)
	}
	r.Close()
	// A leftover temp file from a crash mid-rebuild is removed at open.
	writeFile(t, path+rebuildSuffix, []byte("half a file"))
	r2 := openTestRaftDB(t, path)
	if last, _ := r2.LastIndex(); last != 6001 {
		t.Fatalf("reopened last index %d, want 6001", last)
	}
	if _, err := os.Stat(path + rebuildSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover rebuild file kept: %v", err)
	}
	if _, err := r2.Entries(5991, 6002, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
}
