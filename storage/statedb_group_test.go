package storage

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/raftlog"
	"go.etcd.io/bbolt"
)

// randomHistory is n log entries of random commands over a few topics and
// clients, with retries (a repeated seq), stale seqs and session-less
// commands, and a no-op now and then.
func randomHistory(rng *rand.Rand, n int) []raftlog.Entry {
	seqs := map[string]uint64{}
	ents := make([]raftlog.Entry, 0, n)
	for i := 1; i <= n; i++ {
		if rng.Intn(20) == 0 {
			ents = append(ents, raftlog.Entry{Index: uint64(i), Term: 1, Type: raftlog.EntryNoop})
			continue
		}
		topic := fmt.Sprintf("t%d", rng.Intn(3))
		var c Command
		switch r := rng.Intn(10); {
		case r == 0:
			c = create(topic)
		case r < 6:
			c = put(topic, strings.Repeat("m", rng.Intn(300))+fmt.Sprint(i))
		default:
			c = pop(topic)
		}
		if rng.Intn(3) != 0 {
			client := fmt.Sprintf("client%d", rng.Intn(5))
			switch r := rng.Intn(8); {
			case r == 0 && seqs[client] > 1:
				c = withSession(c, client, seqs[client]-1) // stale
			case r == 1 && seqs[client] > 0:
				c = withSession(c, client, seqs[client]) // retry
			default:
				seqs[client]++
				c = withSession(c, client, seqs[client])
			}
		}
		c.ProposalID = uint64(i)
		ents = append(ents, cmdEntry(uint64(i), c))
	}
	return ents
}

// dumpState renders every bucket and key of the file's committed contents
// plus what tx-less reads see, for byte-for-byte comparison.
func dumpState(t *testing.T, s *StateDB) string {
	t.Helper()
	var b strings.Builder
	var walk func(prefix string, bk *bbolt.Bucket) error
	walk = func(prefix string, bk *bbolt.Bucket) error {
		return bk.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(fmt.Sprintf("%s/%x", prefix, k), bk.Bucket(k))
			}
			fmt.Fprintf(&b, "%s/%x=%x\n", prefix, k, v)
			return nil
		})
	}
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bbolt.Bucket) error { return walk(string(name), bk) })
	})
	if err != nil {
		t.Fatalf("dump %s: %v", s.Path(), err)
	}
	return b.String()
}

// applyAll applies ents in random batches and returns the results by index.
func applyAll(t *testing.T, s *StateDB, rng *rand.Rand, ents []raftlog.Entry, crashAt int, crashed func()) map[uint64]Applied {
	t.Helper()
	out := map[uint64]Applied{}
	for lo := 0; lo < len(ents); {
		hi := min(len(ents), lo+1+rng.Intn(40))
		if lo < crashAt && hi >= crashAt {
			hi = crashAt
		}
		got, err := s.Apply(ents[lo:hi])
		if err != nil {
			t.Fatalf("Apply %d..%d: %v", ents[lo].Index, ents[hi-1].Index, err)
		}
		for _, a := range got {
			out[a.Index] = a
		}
		lo = hi
		if lo == crashAt && crashed != nil {
			crashed()
		}
	}
	return out
}

// TestStateGroupCommitReapplyIsIdentical: state.db commits applied entries
// in groups, so a crash loses the uncommitted tail. A random history is
// applied once without a crash (the reference) and once with a crash at a
// random point (the file's bytes at that moment are what a power cut
// leaves: bbolt writes nothing before Commit). Re-applying the log from the
// crashed copy's durable applied index must give the same results for every
// entry and the same file contents as the reference, byte for byte. Seeds
// 1..12; a failure names its seed.
func TestStateGroupCommitReapplyIsIdentical(t *testing.T) {
	for seed := int64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			ents := randomHistory(rng, 600)
			opts := StateOptions{MaxSessions: 3, GroupEntries: 20 + rng.Intn(80), GroupBytes: 4 << 10, GroupDelay: time.Hour}

			ref, err := OpenStateDB(filepath.Join(t.TempDir(), "state.db"), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			want := applyAll(t, ref, rand.New(rand.NewSource(seed)), ents, -1, nil)

			dir := t.TempDir()
			s, err := OpenStateDB(filepath.Join(dir, "state.db"), opts)
			if err != nil {
				t.Fatal(err)
			}
			crashAt := 1 + rng.Intn(len(ents)-1)
			var durable, applied uint64
			crashCopy := filepath.Join(dir, "crashed.db")
			applyAll(t, s, rand.New(rand.NewSource(seed)), ents, crashAt, func() {
				durable, applied = s.DurableAppliedIndex(), s.AppliedIndex()
				data, err := os.ReadFile(s.Path())
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(crashCopy, data, 0o600); err != nil {
					t.Fatal(err)
				}
			})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if applied != uint64(crashAt) || durable > applied {
				t.Fatalf("at the crash: applied %d durable %d, want applied %d >= durable", applied, durable, crashAt)
			}

			re, err := OpenStateDB(crashCopy, opts)
			if err != nil {
				t.Fatalf("open the crashed copy: %v", err)
			}
			defer re.Close()
			if got := re.AppliedIndex(); got != durable {
				t.Fatalf("crashed copy holds applied %d, DurableAppliedIndex said %d", got, durable)
			}
			got := applyAll(t, re, rand.New(rand.NewSource(seed+100)), ents[durable:], -1, nil)
			for i := durable + 1; i <= uint64(len(ents)); i++ {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("crash at %d (durable %d): entry %d re-applied gives %+v, the reference %+v", crashAt, durable, i, got[i], want[i])
				}
			}
			if a, b := dumpState(t, re), dumpState(t, ref); a != b {
				t.Fatalf("crash at %d (durable %d): re-applied state differs from the reference:\n%s\nvs\n%s", crashAt, durable, a, b)
			}
			if err := re.Commit(); err != nil {
				t.Fatal(err)
			}
			if re.DurableAppliedIndex() != uint64(len(ents)) {
				t.Fatalf("after Commit, durable %d, want %d", re.DurableAppliedIndex(), len(ents))
			}
		})
	}
}

// TestStateGroupCommitBounds: entries stay pending until a bound is
// reached; reads see them; CopyCompact and WriteTo see only the durable ones.
func TestStateGroupCommitBounds(t *testing.T) {
	s, err := OpenStateDB(filepath.Join(t.TempDir(), "state.db"), StateOptions{MaxSessions: 3, GroupEntries: 5, GroupBytes: 1 << 20, GroupDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Apply([]raftlog.Entry{cmdEntry(1, create("a")), cmdEntry(2, put("a", "x"))}); err != nil {
		t.Fatal(err)
	}
	if s.AppliedIndex() != 2 || s.DurableAppliedIndex() != 0 || s.Commits() != 0 {
		t.Fatalf("after 2 of 5: applied %d durable %d commits %d", s.AppliedIndex(), s.DurableAppliedIndex(), s.Commits())
	}
	if names, err := s.Topics(); err != nil || !reflect.DeepEqual(names, []string{"a"}) {
		t.Fatalf("Topics = %v, %v: reads must see applied entries", names, err)
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := OpenStateDB(copyPath, StateOptions{MaxSessions: 3}); err != nil {
		t.Fatal(err)
	} else if names, _ := c.Topics(); c.AppliedIndex() != 0 || len(names) != 0 {
		t.Fatalf("WriteTo copy: applied %d topics %v, want only the durable state", c.AppliedIndex(), names)
	} else {
		c.Close()
	}
	if err := s.CommitIfDue(time.Now()); err != nil || s.DurableAppliedIndex() != 0 {
		t.Fatalf("CommitIfDue before the delay committed: durable %d, %v", s.DurableAppliedIndex(), err)
	}
	if _, err := s.Apply([]raftlog.Entry{cmdEntry(3, put("a", "y")), cmdEntry(4, pop("a")), cmdEntry(5, put("a", "z"))}); err != nil {
		t.Fatal(err)
	}
	if s.DurableAppliedIndex() != 5 || s.Commits() != 1 {
		t.Fatalf("after 5 of 5: durable %d commits %d, want 5 and 1", s.DurableAppliedIndex(), s.Commits())
	}
	if _, err := s.Apply([]raftlog.Entry{cmdEntry(6, pop("a"))}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitIfDue(time.Now().Add(2 * time.Hour)); err != nil || s.DurableAppliedIndex() != 6 {
		t.Fatalf("CommitIfDue after the delay: durable %d, %v", s.DurableAppliedIndex(), err)
	}
}
