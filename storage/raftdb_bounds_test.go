package storage

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

// TestRaftDBRefusesTermOutOfRange: a raft.db holding term 2^64-1 (what a
// forged heartbeat persisted before peer frames were validated) is refused
// at open with a message naming the file and the fix, not loaded for the
// core to panic on. Without checkBounds it opens (checked).
func TestRaftDBRefusesTermOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		hs   raftlog.HardState
		ents []raftlog.Entry
	}{
		{"term 2^64-1", raftlog.HardState{Term: math.MaxUint64}, nil},
		{"term 2^63", raftlog.HardState{Term: raftlog.MaxTerm + 1}, nil},
		{"entry term 2^63", raftlog.HardState{Term: 1}, []raftlog.Entry{{Index: 1, Term: raftlog.MaxTerm + 1, Type: raftlog.EntryNormal}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "raft.db")
			r, err := OpenRaftDB(path, testCluster)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Save(tc.hs, tc.ents); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			r, err = OpenRaftDB(path, testCluster)
			if err == nil {
				r.Close()
				t.Fatal("opened a raft.db whose term is out of range")
			}
			if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "--recover") {
				t.Fatalf("error %q: want ErrOutOfRange naming %s and the fix", err, path)
			}
		})
	}
	// The bound itself is fine.
	path := filepath.Join(t.TempDir(), "raft.db")
	r := openTestRaftDB(t, path)
	if err := r.Save(raftlog.HardState{Term: raftlog.MaxTerm}, nil); err != nil {
		t.Fatal(err)
	}
	r.Close()
	openTestRaftDB(t, path)
}
