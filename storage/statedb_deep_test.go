package storage

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

// fillQueue applies n puts of a size-byte message to topic q (created at
// index 1) in batches of 500 entries, committing each batch.
func fillQueue(t *testing.T, s *StateDB, n, size int) uint64 {
	t.Helper()
	if _, err := s.Apply([]raftlog.Entry{cmdEntry(1, create("q"))}); err != nil {
		t.Fatal(err)
	}
	msg := strings.Repeat("m", size)
	next := uint64(2)
	for done := 0; done < n; {
		var es []raftlog.Entry
		for ; done < n && len(es) < 500; done++ {
			es = append(es, cmdEntry(next, put("q", msg)))
			next++
		}
		if _, err := s.Apply(es); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return next
}

// TestStateQueuePagesFull checks that a deep queue costs about its bytes on
// disk: queue pages are filled before they split (decision 15). With
// bbolt's default fill of half a page, the same queue takes about twice its
// bytes, which this test catches (checked by setting queueFillPercent to 0.5).
func TestStateQueuePagesFull(t *testing.T) {
	const n, size = 20000, 256
	s := openTestStateDB(t, filepath.Join(t.TempDir(), "state.db"), 10)
	fillQueue(t, s, n, size)
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	queued := int64(n * size)
	live := st.FileBytes - st.FreeBytes
	// Each message also carries an 8-byte key, a CRC and bbolt's 16-byte
	// leaf element: about 1.12x; allow 1.35x for branch pages and partly
	// filled pages.
	if limit := queued * 135 / 100; live > limit {
		t.Fatalf("state.db holds %d live bytes for %d bytes queued (%.2fx); want at most 1.35x", live, queued, float64(live)/float64(queued))
	}
	if qb, err := s.QueuedBytes(); err != nil || qb != uint64(queued) {
		t.Fatalf("QueuedBytes = %d, %v; want %d", qb, err, queued)
	}
}

// TestStateViewSnapshot streams the file from one read transaction while
// applies go on, and checks the copy holds exactly the state at the applied
// index that transaction saw.
func TestStateViewSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := openTestStateDB(t, filepath.Join(dir, "state.db"), 10)
	next := fillQueue(t, s, 3000, 100)
	copyPath := filepath.Join(dir, "copy.db")
	var snapApplied uint64
	err := s.ViewSnapshot(func(applied uint64, write func(w io.Writer) (int64, error)) error {
		snapApplied = applied
		// Applies committed meanwhile are not in the copy.
		if _, err := s.Apply([]raftlog.Entry{cmdEntry(next, put("q", "later"))}); err != nil {
			return err
		}
		if err := s.Commit(); err != nil {
			return err
		}
		f, err := os.Create(copyPath)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = write(f)
		return err
	})
	if err != nil {
		t.Fatalf("ViewSnapshot: %v", err)
	}
	if snapApplied != next-1 {
		t.Fatalf("snapshot applied index = %d, want %d", snapApplied, next-1)
	}
	c := openTestStateDB(t, copyPath, 10)
	if c.AppliedIndex() != snapApplied {
		t.Fatalf("copy applied = %d, want %d", c.AppliedIndex(), snapApplied)
	}
	checkTopics(t, c, []TopicDepth{{"q", 3000, 300000}})
}
