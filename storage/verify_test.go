package storage

import (
	"bytes"
	"github.com/raftmq/raftmq/internal/damage"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func truncateFile(t *testing.T, path string, frac float64) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(float64(info.Size())*frac)); err != nil {
		t.Fatal(err)
	}
}

// TestInspectNamesTheDamagedFile: each kind of damage the broker checks
// for at start is found and attributed to the right file.
func TestInspectNamesTheDamagedFile(t *testing.T) {
	tests := []struct {
		name              string
		damage            func(t *testing.T, dir string)
		raftBad, stateBad bool
		problem           string
	}{
		{"healthy", func(*testing.T, string) {}, false, false, ""},
		{"flipped bit in a raft.db entry", func(t *testing.T, dir string) {
			if damage.FlipAll(t, filepath.Join(dir, RaftDBFile), []byte("second-message-payload"), 0x40) == 0 {
				t.Fatal("marker not in raft.db")
			}
		}, true, false, "log entry 3"},
		{"truncated raft.db", func(t *testing.T, dir string) {
			truncateFile(t, filepath.Join(dir, RaftDBFile), 0.5)
		}, true, false, "raft.db"},
		{"garbage raft.db", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, RaftDBFile), bytes.Repeat([]byte("garbage!"), 4096))
		}, true, false, "raft.db"},
		{"flipped byte in a state.db message", func(t *testing.T, dir string) {
			if damage.FlipAll(t, filepath.Join(dir, StateDBFile), []byte("second-message-payload"), 0x40) == 0 {
				t.Fatal("marker not in state.db")
			}
		}, false, true, "checksum mismatch"},
		{"truncated state.db", func(t *testing.T, dir string) {
			truncateFile(t, filepath.Join(dir, StateDBFile), 0.3)
		}, false, true, "state.db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := makeDataDir(t, testPayloads())
			tc.damage(t, dir)
			rep, err := Inspect(dir)
			if err != nil {
				t.Fatal(err)
			}
			if rep.RaftDBDamaged != tc.raftBad || rep.StateDBDamaged != tc.stateBad {
				t.Fatalf("damaged raft.db=%v state.db=%v, want %v %v; problems %q",
					rep.RaftDBDamaged, rep.StateDBDamaged, tc.raftBad, tc.stateBad, rep.Problems)
			}
			if rep.OK() != (tc.problem == "") || !strings.Contains(strings.Join(rep.Problems, "\n"), tc.problem) {
				t.Fatalf("problems %q, want one containing %q", rep.Problems, tc.problem)
			}
		})
	}
}

func TestRecoveringFlagPersists(t *testing.T) {
	dir := makeDataDir(t, testPayloads())
	path := filepath.Join(dir, RaftDBFile)
	for _, on := range []bool{true, false} {
		r, err := OpenRaftDB(path, testCluster)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SetRecovering(on); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		r, err = OpenRaftDB(path, testCluster)
		if err != nil {
			t.Fatal(err)
		}
		got := r.Recovering()
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		rep, err := Inspect(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got != on || rep.Recovering != on || !rep.OK() {
			t.Fatalf("SetRecovering(%v): reopened %v, inspect %v, problems %q", on, got, rep.Recovering, rep.Problems)
		}
	}
}
