package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/raftmq/raftmq/internal/damage"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

// makeDataDir writes a small but complete data directory and closes it.
func makeDataDir(t *testing.T, payloads [][]byte) string {
	t.Helper()
	dir := t.TempDir()
	r, err := OpenRaftDB(filepath.Join(dir, RaftDBFile), testCluster)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenStateDB(filepath.Join(dir, StateDBFile), StateOptions{MaxSessions: 10})
	if err != nil {
		t.Fatal(err)
	}
	var es []raftlog.Entry
	for i, p := range payloads {
		es = append(es, raftlog.Entry{Index: uint64(i + 1), Term: 2, Type: raftlog.EntryNormal, Data: p})
	}
	if err := r.Save(raftlog.HardState{Term: 2, Vote: 1, Commit: uint64(len(es))}, es); err != nil {
		t.Fatal(err)
	}
	if err := r.SetConfState(raftlog.ConfState{Voters: []uint64{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(es); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func testPayloads() [][]byte {
	return [][]byte{
		EncodeCommand(create("orders")),
		EncodeCommand(withSession(put("orders", "first-message-payload"), "c1", 1)),
		EncodeCommand(put("orders", "second-message-payload")),
		EncodeCommand(create("audit")),
	}
}

func TestInspectGoodDir(t *testing.T) {
	dir := makeDataDir(t, testPayloads())
	rep, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Report{
		DataDir: dir, RaftDB: filepath.Join(dir, RaftDBFile), StateDB: filepath.Join(dir, StateDBFile),
		ClusterID: testCluster, Term: 2, Vote: 1, Commit: 4, Voters: []uint64{1, 2, 3},
		FirstIndex: 1, LastIndex: 4, Entries: 4, AppliedIndex: 4, Sessions: 1,
		Topics: []TopicDepth{{"orders", 2, 43}, {"audit", 0, 0}},
	}
	if !reflect.DeepEqual(rep, want) || !rep.OK() {
		t.Fatalf("report:\n%+v\nwant\n%+v", rep, want)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"raft_db"`, `"checksum_errors":0`, `"applied_index":4`, `"topics":[{"name":"orders","depth":2,"bytes":43}`, `"problems":null`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Fatalf("JSON %s lacks %s", b, key)
		}
	}
}

func TestInspectCorruptedEntry(t *testing.T) {
	payloads := testPayloads()
	dir := makeDataDir(t, payloads)
	// Entry 3's payload ends with this message; damage it in raft.db only.
	if n := damage.FlipAll(t, filepath.Join(dir, RaftDBFile), []byte("second-message-payload"), 0x40); n == 0 {
		t.Fatal("marker not found in raft.db")
	}
	rep, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.ChecksumErrors != 1 || rep.Entries != 4 || rep.AppliedIndex != 4 {
		t.Fatalf("report %+v: want one checksum error among 4 entries", rep)
	}
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "entry 3") || !strings.Contains(rep.Problems[0], rep.RaftDB) {
		t.Fatalf("problems %q: want one naming entry 3 and %s", rep.Problems, rep.RaftDB)
	}
}

func TestInspectDamagedOrMissingFiles(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		problem string
	}{
		{"state.db not bbolt", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, StateDBFile), bytes.Repeat([]byte("garbage!"), 1024))
		}, "state.db: not a readable bbolt database"},
		{"raft.db missing", func(t *testing.T, dir string) {
			if err := removeFile(filepath.Join(dir, RaftDBFile)); err != nil {
				t.Fatal(err)
			}
		}, "raft.db does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := makeDataDir(t, testPayloads())
			tc.damage(t, dir)
			rep, err := Inspect(dir)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || !strings.Contains(strings.Join(rep.Problems, "\n"), tc.problem) {
				t.Fatalf("problems %q: want one containing %q", rep.Problems, tc.problem)
			}
		})
	}
	if _, err := Inspect(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("Inspect of a missing directory succeeded")
	}
}

func TestInspectWhileBrokerRuns(t *testing.T) {
	dir := makeDataDir(t, testPayloads())
	openTestRaftDB(t, filepath.Join(dir, RaftDBFile))
	_, err := Inspect(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "is a broker running on this directory?") {
		t.Fatalf("err = %v, want ErrLocked asking about a running broker", err)
	}
}
