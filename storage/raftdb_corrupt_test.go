package storage

import (
	"bytes"
	"errors"
	"github.com/raftmq/raftmq/internal/damage"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/raftlog"
)

func TestRaftDBFlippedByteDetected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	r := openTestRaftDB(t, path)
	var es []raftlog.Entry
	for i := uint64(1); i <= 5; i++ {
		es = append(es, raftlog.Entry{Index: i, Term: 1, Type: raftlog.EntryNormal, Data: bytes.Repeat([]byte{byte('a' + i)}, 40)})
	}
	if err := r.Save(raftlog.HardState{Term: 1}, es); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := damage.FlipAll(t, path, es[2].Data, 0x40); n == 0 {
		t.Fatal("marker of entry 3 not found in the file")
	}
	r2 := openTestRaftDB(t, path)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Entries", func() error { _, err := r2.Entries(1, 6, math.MaxUint64); return err }},
		{"Term", func() error { _, err := r2.Term(3); return err }},
		{"Compact", func() error { return r2.Compact(3) }},
	} {
		err := tc.call()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "entry 3") || !strings.Contains(err.Error(), path) {
			t.Fatalf("%s: err = %v, want ErrCorrupt naming entry 3 and %s", tc.name, err, path)
		}
	}
	// The undamaged entries are still served.
	if got, err := r2.Entries(4, 6, math.MaxUint64); err != nil || len(got) != 2 {
		t.Fatalf("Entries(4,6) = %d entries, %v", len(got), err)
	}
}

func TestOpenDamagedFileIsCorrupt(t *testing.T) {
	const seed = 7
	rng := rand.New(rand.NewSource(seed))
	random := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	// A valid file with enough entries that truncation cuts data pages.
	validPath := filepath.Join(t.TempDir(), "valid.db")
	r := openTestRaftDB(t, validPath)
	for i := uint64(1); i <= 2000; i += 100 {
		batch := make([]raftlog.Entry, 100)
		for j := range batch {
			batch[j] = raftlog.Entry{Index: i + uint64(j), Term: 1, Type: raftlog.EntryNormal, Data: random(256)}
		}
		if err := r.Save(raftlog.HardState{Term: 1}, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	valid, err := os.ReadFile(validPath)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		bytes []byte
	}{
		{"random 64 KiB", random(64 << 10)},
		{"random 100 bytes", random(100)},
		{"text file", []byte("addresses: not a database\n")},
		{"truncated to half", valid[:len(valid)/2]},
		{"truncated to one page", valid[:4096]},
		{"truncated mid second page", valid[:5000]},
		{"both meta pages zeroed", append(make([]byte, 8192), valid[8192:]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "raft.db")
			if err := os.WriteFile(path, tc.bytes, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := OpenRaftDB(path, testCluster)
			if err == nil {
				_ = r.Close()
				t.Fatalf("seed %d: opened a damaged file", seed)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move the file aside") {
				t.Fatalf("seed %d: err = %v, want ErrCorrupt naming %s with advice", seed, err, path)
			}
		})
	}
}

func TestRaftDBSecondOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	openTestRaftDB(t, path)
	start := time.Now()
	r2, err := OpenRaftDB(path, testCluster)
	elapsed := time.Since(start)
	if err == nil {
		_ = r2.Close()
		t.Fatal("second open succeeded")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "is a broker running") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want ErrLocked naming %s", err, path)
	}
	// Generous bound: the lock timeout is one second; this only catches a hang.
	if elapsed > 10*time.Second {
		t.Fatalf("second open took %v", elapsed)
	}
}
