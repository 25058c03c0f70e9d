package broker

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/storage"
)

func newTestApplier(t *testing.T) (*applier, *storage.StateDB) {
	t.Helper()
	st, err := storage.OpenStateDB(filepath.Join(t.TempDir(), "state.db"), storage.StateOptions{
		MaxSessions: 10, GroupEntries: stateGroupEntries, GroupBytes: stateGroupBytes, GroupDelay: stateGroupDelay})
	if err != nil {
		t.Fatal(err)
	}
	a := newApplier(st, zerolog.Nop(), func(failpoint) {})
	t.Cleanup(func() {
		a.close()
		_ = st.Close()
	})
	return a, st
}

func putEntry(index uint64, topic, msg string, proposal uint64) raftlog.Entry {
	c := storage.Command{Op: storage.OpPut, Topic: topic, Message: msg, ProposalID: proposal}
	if msg == "" {
		c = storage.Command{Op: storage.OpCreateTopic, Topic: topic, ProposalID: proposal}
	}
	return raftlog.Entry{Index: index, Term: 1, Type: raftlog.EntryNormal, Data: storage.EncodeCommand(c)}
}

// The applier applies batches in order, reports each batch's results and
// last index, and do runs only once every batch before it is applied.
func TestApplierOrderAndBarrier(t *testing.T) {
	a, _ := newTestApplier(t)
	a.submit([]raftlog.Entry{putEntry(1, "t", "", 1)})
	var next uint64 = 2
	for b := 0; b < 3*applyQueueBatches; b++ { // more than the queue holds: submit waits, never deadlocks
		var ents []raftlog.Entry
		for i := 0; i < 5; i++ {
			ents = append(ents, putEntry(next, "t", "m", 100+next))
			next++
		}
		a.submit(ents)
	}
	var sawApplied uint64
	if err := a.do(func(st *storage.StateDB) error { sawApplied = st.AppliedIndex(); return nil }); err != nil {
		t.Fatal(err)
	}
	if sawApplied != next-1 {
		t.Fatalf("do ran at applied index %d, want every submitted entry applied (%d)", sawApplied, next-1)
	}
	var last uint64
	var proposals []uint64
	for _, d := range a.take() {
		if d.err != nil {
			t.Fatal(d.err)
		}
		if d.last <= last {
			t.Fatalf("batch ending at %d reported after one ending at %d", d.last, last)
		}
		last = d.last
		for _, r := range d.results {
			proposals = append(proposals, r.ProposalID)
		}
	}
	if last != next-1 || len(proposals) != int(next-1) {
		t.Fatalf("reported up to %d with %d results, want %d and %d", last, len(proposals), next-1, next-1)
	}
	for i, p := range proposals[1:] {
		if p != 102+uint64(i) {
			t.Fatalf("result %d is proposal %d, want %d: out of order", i+1, p, 102+uint64(i))
		}
	}
}

// A batch that cannot be applied stops the applier for good: the error is
// reported, later batches are not applied, and do returns it.
func TestApplierFailureIsSticky(t *testing.T) {
	a, st := newTestApplier(t)
	a.submit([]raftlog.Entry{putEntry(1, "t", "", 1)})
	a.submit([]raftlog.Entry{{Index: 2, Term: 1, Type: raftlog.EntryNormal, Data: []byte{0xff, 0x00}}})
	a.submit([]raftlog.Entry{putEntry(3, "t", "m", 3)})
	err := a.do(func(*storage.StateDB) error { return nil })
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("do after a failed batch: %v, want ErrStopped", err)
	}
	var failed error
	for _, d := range a.take() {
		if d.err != nil {
			failed = d.err
		}
	}
	if !errors.Is(failed, storage.ErrBadCommand) {
		t.Fatalf("reported failure %v, want one wrapping ErrBadCommand", failed)
	}
	if got := st.AppliedIndex(); got != 1 {
		t.Fatalf("applied index %d after the failure, want 1: nothing after a failed batch is applied", got)
	}
}

// A group commit is due by time even when no batch follows (decision 4).
func TestApplierCommitsIdleGroup(t *testing.T) {
	a, st := newTestApplier(t)
	a.submit([]raftlog.Entry{putEntry(1, "t", "", 1)})
	testwait.For(t, 10*time.Second, "the idle group committed (durable applied index 1)", func() bool {
		return st.DurableAppliedIndex() == 1
	})
	if got := a.durable.Load(); got != 1 {
		// The status copy follows the commit on the applier's next check.
		if err := a.do(func(*storage.StateDB) error { return nil }); err != nil || a.durable.Load() != 1 {
			t.Fatalf("status durable index %d, want 1 (%v)", got, err)
		}
	}
}
