package broker

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/storage"
)

// memLogStore is the in-memory twin of raft.db (decision 27): the log,
// hard state, membership and snapshot record of a raftlog.MemoryStorage,
// plus the members record and the recovering mark. Everything written is
// "durable" at once; a test that keeps the object across a restart gets a
// disk that never loses anything. TestMemLogStoreMatchesRaftDB holds it to
// raft.db's semantics.
type memLogStore struct {
	*raftlog.MemoryStorage

	mu         sync.Mutex
	members    storage.Members
	recovering bool
}

var _ logStore = (*memLogStore)(nil)

func newMemLogStore() *memLogStore {
	return &memLogStore{MemoryStorage: raftlog.NewMemoryStorage()}
}

func cloneMembers(m storage.Members) storage.Members {
	return storage.Members{Addrs: maps.Clone(m.Addrs), Removed: slices.Clone(m.Removed), Index: m.Index}
}

func (s *memLogStore) Save(hs raftlog.HardState, ents []raftlog.Entry) error {
	for i := 1; i < len(ents); i++ {
		if ents[i].Index != ents[i-1].Index+1 {
			panic(fmt.Sprintf("memLogStore: Save: entries not contiguous: index %d follows %d", ents[i].Index, ents[i-1].Index))
		}
	}
	if err := s.Append(ents); err != nil {
		return err
	}
	if !hs.IsEmpty() {
		return s.SetHardState(hs)
	}
	return nil
}

func (s *memLogStore) Members() storage.Members {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneMembers(s.members)
}

func (s *memLogStore) SetMembers(m storage.Members, cs raftlog.ConfState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members = cloneMembers(m)
	s.SetConfState(cs)
	return nil
}

func (s *memLogStore) Recovering() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovering
}

func (s *memLogStore) SetRecovering(on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recovering = on
	return nil
}

func (s *memLogStore) ApplySnapshotWithMembers(meta raftlog.SnapshotMeta, m storage.Members) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ApplySnapshot(meta); err != nil {
		return err
	}
	s.members = cloneMembers(m)
	return nil
}

// CompactLater compacts at once: memory has no commit to spare. Like
// raft.db it needs a snapshot that covers index.
func (s *memLogStore) CompactLater(index uint64) error {
	if snap, err := s.Snapshot(); err != nil || snap.Index < index {
		return fmt.Errorf("memLogStore: compact to %d in steps: the snapshot covers only %d (%v)", index, snap.Index, err)
	}
	return s.Compact(index)
}

func (s *memLogStore) CompactStep() error { return nil }

func (s *memLogStore) Stats() (storage.FileStats, error) { return storage.FileStats{}, nil }
func (s *memLogStore) Rebuild() error                    { return nil }

// logView is everything a reader can see of a log store.
type logView struct {
	HardState   raftlog.HardState
	Conf        raftlog.ConfState
	First, Last uint64
	Snapshot    raftlog.SnapshotMeta
	Terms       []uint64 // Term(First-1) .. Term(Last)
	Entries     []raftlog.Entry
	Members     storage.Members
	Recovering  bool
	// BelowFirst is the error class of Entries and Term below the log.
	BelowFirst string
}

func viewLog(t *testing.T, s interface {
	logStore
	Members() storage.Members
}) logView {
	t.Helper()
	var v logView
	var err error
	if v.HardState, v.Conf, err = s.InitialState(); err != nil {
		t.Fatal(err)
	}
	if v.First, err = s.FirstIndex(); err != nil {
		t.Fatal(err)
	}
	if v.Last, err = s.LastIndex(); err != nil {
		t.Fatal(err)
	}
	if v.Snapshot, err = s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := v.First - 1; i <= v.Last; i++ {
		term, err := s.Term(i)
		if err != nil {
			t.Fatalf("Term(%d): %v", i, err)
		}
		v.Terms = append(v.Terms, term)
	}
	if v.Last >= v.First {
		if v.Entries, err = s.Entries(v.First, v.Last+1, 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	v.Members, v.Recovering = s.Members(), s.Recovering()
	if v.First > 1 {
		_, eErr := s.Entries(v.First-1, v.Last+1, 1<<30)
		_, tErr := s.Term(v.First - 2)
		v.BelowFirst = fmt.Sprintf("entries compacted %v, term compacted %v",
			errors.Is(eErr, raftlog.ErrCompacted), errors.Is(tErr, raftlog.ErrCompacted))
	}
	return v
}

func logEntries(lo, hi, term uint64) []raftlog.Entry {
	var ents []raftlog.Entry
	for i := lo; i <= hi; i++ {
		ents = append(ents, raftlog.Entry{Index: i, Term: term, Type: raftlog.EntryNormal, Data: []byte(fmt.Sprintf("e%d.%d", i, term))})
	}
	return ents
}

// TestMemLogStoreMatchesRaftDB drives raft.db and its twin through the
// same writes the raft loop makes (appends, a conflicting suffix,
// membership, the recovering mark, a snapshot record, compaction, an
// installed snapshot) and requires them to look the same after each: a
// test that passes over the twin says something about raft.db.
func TestMemLogStoreMatchesRaftDB(t *testing.T) {
	db, err := storage.OpenRaftDB(filepath.Join(t.TempDir(), storage.RaftDBFile), "twins")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	twin := newMemLogStore()
	voters := raftlog.ConfState{Voters: []uint64{1, 2, 3}}
	members := storage.Members{Addrs: map[uint64]storage.MemberAddr{4: {IP: "10.0.0.4", Port: 1, InternalPort: 2}}, Index: 12}
	steps := []struct {
		name string
		do   func(s logStore) error
	}{
		{"membership", func(s logStore) error { return s.SetMembers(storage.Members{}, voters) }},
		{"append 1..10", func(s logStore) error {
			return s.Save(raftlog.HardState{Term: 1, Vote: 1, Commit: 0}, logEntries(1, 10, 1))
		}},
		{"replace 8.. with term 2", func(s logStore) error {
			return s.Save(raftlog.HardState{Term: 2, Vote: 2, Commit: 7}, logEntries(8, 9, 2))
		}},
		{"append 10..14, no hard state", func(s logStore) error { return s.Save(raftlog.HardState{}, logEntries(10, 14, 2)) }},
		{"members record", func(s logStore) error {
			return s.SetMembers(members, raftlog.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}})
		}},
		{"recovering on", func(s logStore) error { return s.SetRecovering(true) }},
		{"snapshot record at 6", func(s logStore) error { _, err := s.CreateSnapshot(6, voters); return err }},
		{"compact to 8", func(s logStore) error { return s.Compact(8) }},
		{"re-append below the base is skipped", func(s logStore) error { return s.Save(raftlog.HardState{}, logEntries(7, 15, 2)) }},
		{"recovering off", func(s logStore) error { return s.SetRecovering(false) }},
		{"install a snapshot at 30", func(s logStore) error {
			m := cloneMembers(members)
			m.Removed = []uint64{3}
			return s.ApplySnapshotWithMembers(raftlog.SnapshotMeta{Index: 30, Term: 4, Conf: raftlog.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{4}}}, m)
		}},
		{"append after the install", func(s logStore) error {
			return s.Save(raftlog.HardState{Term: 4, Vote: 1, Commit: 30}, logEntries(31, 33, 4))
		}},
	}
	for _, st := range steps {
		errDB, errTwin := st.do(db), st.do(twin)
		if (errDB == nil) != (errTwin == nil) {
			t.Fatalf("%s: raft.db says %v, the twin %v", st.name, errDB, errTwin)
		}
		if errDB != nil {
			t.Fatalf("%s: %v", st.name, errDB)
		}
		if got, want := viewLog(t, twin), viewLog(t, db); !reflect.DeepEqual(got, want) {
			t.Fatalf("after %s the twin differs from raft.db:\n twin    %+v\n raft.db %+v", st.name, got, want)
		}
	}
	// Refusals agree too: a snapshot record or compaction at or below what
	// is already there, and beyond the log.
	for _, st := range []struct {
		name string
		do   func(s logStore) error
		is   error
	}{
		{"snapshot record at the installed index", func(s logStore) error { _, err := s.CreateSnapshot(30, voters); return err }, raftlog.ErrSnapOutOfDate},
		{"snapshot record beyond the log", func(s logStore) error { _, err := s.CreateSnapshot(40, voters); return err }, raftlog.ErrUnavailable},
		{"compact at the base", func(s logStore) error { return s.Compact(30) }, raftlog.ErrCompacted},
		{"compact beyond the log", func(s logStore) error { return s.Compact(40) }, raftlog.ErrUnavailable},
		{"install an older snapshot", func(s logStore) error {
			return s.ApplySnapshotWithMembers(raftlog.SnapshotMeta{Index: 20, Term: 3}, storage.Members{})
		}, raftlog.ErrSnapOutOfDate},
	} {
		if errDB, errTwin := st.do(db), st.do(twin); !errors.Is(errDB, st.is) || !errors.Is(errTwin, st.is) {
			t.Errorf("%s: raft.db says %v, the twin %v; want both %v", st.name, errDB, errTwin, st.is)
		}
	}
}
