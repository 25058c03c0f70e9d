package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
	"go.etcd.io/bbolt"
)

func openTestStateDB(t *testing.T, path string, maxSessions int) *StateDB {
	t.Helper()
	s, err := OpenStateDB(path, StateOptions{MaxSessions: maxSessions})
	if err != nil {
		t.Fatalf("OpenStateDB(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func cmdEntry(index uint64, c Command) raftlog.Entry {
	return raftlog.Entry{Index: index, Term: 1, Type: raftlog.EntryNormal, Data: EncodeCommand(c)}
}

func create(topic string) Command   { return Command{Op: OpCreateTopic, Topic: topic} }
func put(topic, msg string) Command { return Command{Op: OpPut, Topic: topic, Message: msg} }
func pop(topic string) Command      { return Command{Op: OpPop, Topic: topic} }
func withSession(c Command, client string, seq uint64) Command {
	c.ClientID, c.Seq = client, seq
	return c
}

var (
	ok      = Result{Success: true}
	no      = Result{}
	got     = func(m string) Result { return Result{Success: true, Message: m, HasMessage: true} }
	staleRe = Result{StaleSeq: true}
)

// step is one command and the result it must produce.
type step struct {
	cmd       Command
	want      Result
	duplicate bool
}

// runSteps applies steps from index next, in batches of batch entries, and
// checks each result.
func runSteps(t *testing.T, s *StateDB, next uint64, batch int, steps []step) uint64 {
	t.Helper()
	for lo := 0; lo < len(steps); lo += batch {
		hi := min(lo+batch, len(steps))
		var es []raftlog.Entry
		for i := lo; i < hi; i++ {
			c := steps[i].cmd
			c.ProposalID = uint64(1000 + i)
			es = append(es, cmdEntry(next, c))
			next++
		}
		applied, err := s.Apply(es)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if len(applied) != hi-lo {
			t.Fatalf("Apply returned %d results for %d entries", len(applied), hi-lo)
		}
		for i, a := range applied {
			st := steps[lo+i]
			if a.Result != st.want || a.Duplicate != st.duplicate || a.ProposalID != uint64(1000+lo+i) || a.Index != es[i].Index {
				t.Fatalf("step %d %+v: got %+v, want result %+v duplicate %v", lo+i, st.cmd, a, st.want, st.duplicate)
			}
		}
	}
	if s.AppliedIndex() != next-1 {
		t.Fatalf("AppliedIndex = %d, want %d", s.AppliedIndex(), next-1)
	}
	return next
}

func TestStateTopicsAndFIFO(t *testing.T) {
	steps := []step{
		{cmd: create("zeta"), want: ok},
		{cmd: create("zeta"), want: no}, // exists
		{cmd: put("alpha", "x"), want: no},
		{cmd: pop("zeta"), want: no}, // empty
		{cmd: pop("missing"), want: no},
		{cmd: put("zeta", "m1"), want: ok},
		{cmd: put("zeta", ""), want: ok}, // empty messages are messages
		{cmd: create("alpha"), want: ok},
		{cmd: put("alpha", "a1"), want: ok},
		{cmd: put("zeta", "m3"), want: ok},
		{cmd: pop("zeta"), want: got("m1")},
		{cmd: pop("zeta"), want: got("")},
		{cmd: create("mid"), want: ok},
		{cmd: put("zeta", "m4"), want: ok},
	}
	for _, batch := range []int{1, 3, len(steps)} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s := openTestStateDB(t, path, 10)
			runSteps(t, s, 1, batch, steps)
			wantDepths := []TopicDepth{{"zeta", 2, 4}, {"alpha", 1, 2}, {"mid", 0, 0}}
			checkTopics(t, s, wantDepths)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := openTestStateDB(t, path, 10)
			checkTopics(t, s2, wantDepths)
			runSteps(t, s2, uint64(len(steps)+1), batch, []step{
				{cmd: pop("zeta"), want: got("m3")},
				{cmd: pop("zeta"), want: got("m4")},
				{cmd: pop("zeta"), want: no},
			})
		})
	}
}

func checkTopics(t *testing.T, s *StateDB, want []TopicDepth) {
	t.Helper()
	depths, err := s.TopicDepths()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(depths, want) {
		t.Fatalf("TopicDepths = %+v, want %+v", depths, want)
	}
	names, err := s.Topics()
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range want {
		if names[i] != d.Name {
			t.Fatalf("Topics = %v, want order of %+v", names, want)
		}
	}
}

func TestStateReplayIsNoop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openTestStateDB(t, path, 10)
	es := []raftlog.Entry{
		cmdEntry(1, create("q")), cmdEntry(2, put("q", "m1")), cmdEntry(3, put("q", "m2")), cmdEntry(4, pop("q")),
	}
	if _, err := s.Apply(es); err != nil {
		t.Fatal(err)
	}
	again, err := s.Apply(es)
	if err != nil || len(again) != 0 {
		t.Fatalf("replay: %v, %v; want nothing applied", again, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// After a restart the broker replays from its log; overlapping entries
	// are skipped, so the pop at 4 is not applied twice.
	s = openTestStateDB(t, path, 10)
	if s.AppliedIndex() != 4 {
		t.Fatalf("AppliedIndex after reopen = %d", s.AppliedIndex())
	}
	out, err := s.Apply(append(es[2:], cmdEntry(5, pop("q"))))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Index != 5 || out[0].Result != got("m2") {
		t.Fatalf("overlapping replay = %+v, want only entry 5 popping m2", out)
	}
	checkTopics(t, s, []TopicDepth{{"q", 0, 0}})
}

func TestStateNoopAdvancesApplied(t *testing.T) {
	s := openTestStateDB(t, filepath.Join(t.TempDir(), "state.db"), 10)
	out, err := s.Apply([]raftlog.Entry{{Index: 1, Term: 1, Type: raftlog.EntryNoop}, cmdEntry(2, create("a")), {Index: 3, Term: 2, Type: raftlog.EntryNoop}})
	if err != nil || len(out) != 1 || out[0].Index != 2 || s.AppliedIndex() != 3 {
		t.Fatalf("out %+v err %v applied %d", out, err, s.AppliedIndex())
	}
}

func TestStateBadEntryAppliesNothing(t *testing.T) {
	s := openTestStateDB(t, filepath.Join(t.TempDir(), "state.db"), 10)
	tests := []struct {
		name string
		bad  raftlog.Entry
	}{
		{"garbage data", raftlog.Entry{Index: 2, Term: 1, Type: raftlog.EntryNormal, Data: []byte("not a command")}},
		{"empty data", raftlog.Entry{Index: 2, Term: 1, Type: raftlog.EntryNormal}},
		{"unknown type", raftlog.Entry{Index: 2, Term: 1, Type: 99}},
	}
	for _, tc := range tests {
		_, err := s.Apply([]raftlog.Entry{cmdEntry(1, create("a")), tc.bad})
		if !errors.Is(err, ErrBadCommand) {
			t.Fatalf("%s: err = %v, want ErrBadCommand", tc.name, err)
		}
		if s.AppliedIndex() != 0 {
			t.Fatalf("%s: applied index moved to %d", tc.name, s.AppliedIndex())
		}
		checkTopics(t, s, []TopicDepth{})
	}
}

func TestStateSessions(t *testing.T) {
	s := openTestStateDB(t, filepath.Join(t.TempDir(), "state.db"), 10)
	runSteps(t, s, 1, 1, []step{
		{cmd: withSession(create("q"), "c1", 1), want: ok},
		{cmd: withSession(create("q"), "c1", 1), want: ok, duplicate: true}, // a retry is answered, not re-run ("exists")
		{cmd: withSession(put("q", "m1"), "c1", 2), want: ok},
		{cmd: withSession(put("q", "m1"), "c1", 2), want: ok, duplicate: true}, // not queued twice
		{cmd: withSession(put("q", "m2"), "c2", 7), want: ok},
		{cmd: withSession(pop("q"), "c1", 3), want: got("m1")},
		{cmd: withSession(pop("q"), "c1", 3), want: got("m1"), duplicate: true}, // not popped twice
		{cmd: withSession(put("q", "late"), "c1", 2), want: staleRe},
		{cmd: withSession(pop("q"), "c1", 1), want: staleRe},
		{cmd: put("q", "m3"), want: ok}, // no session
		{cmd: put("q", "m3"), want: ok},
	})
	checkTopics(t, s, []TopicDepth{{"q", 3, 6}})
}

func TestStateSessionEviction(t *testing.T) {
	s := openTestStateDB(t, filepath.Join(t.TempDir(), "state.db"), 2)
	runSteps(t, s, 1, 2, []step{
		{cmd: create("q"), want: ok},
		{cmd: withSession(put("q", "a1"), "a", 1), want: ok},                  // a last used at 2
		{cmd: withSession(put("q", "b1"), "b", 1), want: ok},                  // b at 3
		{cmd: withSession(put("q", "a1"), "a", 1), want: ok, duplicate: true}, // a at 4
		{cmd: withSession(put("q", "c1"), "c", 1), want: ok},                  // evicts b (oldest use: 3)
		{cmd: withSession(put("q", "a1"), "a", 1), want: ok, duplicate: true}, // a kept
		{cmd: withSession(put("q", "b1"), "b", 1), want: ok},                  // b forgotten: runs again, evicts c (5)
		{cmd: withSession(put("q", "c1"), "c", 1), want: ok},                  // c forgotten, evicts a (6)
		{cmd: withSession(put("q", "b1"), "b", 1), want: ok, duplicate: true},
	})
	var n uint64
	if err := s.view(func(tx *bbolt.Tx) error { var err error; n, err = sessionCount(tx, s.path); return err }); err != nil || n != 2 {
		t.Fatalf("session count = %d, %v; want 2", n, err)
	}
}

// TestStateAppliedIndexWithResults copies state.db while it is open (a
// simulated power cut) between batches: the copy holds each batch's state
// and its applied index together, never one without the other.
func TestStateAppliedIndexWithResults(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	s := openTestStateDB(t, path, 10)
	next := runSteps(t, s, 1, 8, []step{{cmd: create("q"), want: ok}, {cmd: put("q", "m1"), want: ok}, {cmd: put("q", "m2"), want: ok}})
	crashed := filepath.Join(dir, "crashed.db")
	copyFile(t, path, crashed)
	runSteps(t, s, next, 8, []step{{cmd: pop("q"), want: got("m1")}})
	c := openTestStateDB(t, crashed, 10)
	if c.AppliedIndex() != 3 {
		t.Fatalf("crash copy applied = %d, want 3", c.AppliedIndex())
	}
	checkTopics(t, c, []TopicDepth{{"q", 2, 4}})
	// Replaying the lost batch on the copy gives the same answer.
	runSteps(t, c, next, 8, []step{{cmd: pop("q"), want: got("m1")}})
}

func TestStateWriteToCopy(t *testing.T) {
	dir := t.TempDir()
	s := openTestStateDB(t, filepath.Join(dir, "state.db"), 10)
	runSteps(t, s, 1, 8, []step{{cmd: create("q"), want: ok}, {cmd: withSession(put("q", "m"), "c", 1), want: ok}})
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v (buffer %d)", n, err, buf.Len())
	}
	copyPath := filepath.Join(dir, "copy.db")
	writeFile(t, copyPath, buf.Bytes())
	c := openTestStateDB(t, copyPath, 10)
	checkTopics(t, c, []TopicDepth{{"q", 1, 1}})
	runSteps(t, c, 3, 8, []step{{cmd: withSession(put("q", "m"), "c", 1), want: ok, duplicate: true}})
}

// TestStateMatchesModel applies a seeded random workload, with client
// retries, in random batch sizes to two files and checks every result
// against a simple in-memory model: same results regardless of batching.
func TestStateMatchesModel(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			m := newModel(3)
			var steps []step
			seqs := map[string]uint64{}
			for i := 0; i < 400; i++ {
				topic := fmt.Sprintf("t%d", rng.Intn(4))
				var c Command
				switch r := rng.Intn(10); {
				case r == 0:
					c = create(topic)
				case r < 6:
					c = put(topic, fmt.Sprintf("m%d", i))
				default:
					c = pop(topic)
				}
				if rng.Intn(2) == 0 {
					client := fmt.Sprintf("client%d", rng.Intn(5))
					if rng.Intn(4) != 0 || seqs[client] == 0 {
						seqs[client]++
					} // else: a retry of the last seq
					c = withSession(c, client, seqs[client])
				}
				want, dup := m.apply(uint64(i+1), c)
				steps = append(steps, step{cmd: c, want: want, duplicate: dup})
			}
			for _, batch := range []int{1, 1 + rng.Intn(64)} {
				s := openTestStateDB(t, filepath.Join(t.TempDir(), "state.db"), 3)
				runSteps(t, s, 1, batch, steps)
				depths, err := s.TopicDepths()
				if err != nil {
					t.Fatal(err)
				}
				if want := m.depths(); !reflect.DeepEqual(depths, want) {
					t.Fatalf("seed %d batch %d: depths %+v, model %+v", seed, batch, depths, want)
				}
			}
		})
	}
}
