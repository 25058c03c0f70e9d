package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/storage"
)

// dataDir makes a small data directory: term 2, one topic with one message.
func dataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	raft, err := storage.OpenRaftDB(filepath.Join(dir, "raft.db"), "c1")
	if err != nil {
		t.Fatal(err)
	}
	ents := []raftlog.Entry{
		{Index: 1, Term: 2, Type: raftlog.EntryNoop},
		{Index: 2, Term: 2, Type: raftlog.EntryNormal, Data: storage.EncodeCommand(storage.Command{Op: storage.OpCreateTopic, Topic: "q"})},
		{Index: 3, Term: 2, Type: raftlog.EntryNormal, Data: storage.EncodeCommand(storage.Command{Op: storage.OpPut, Topic: "q", Message: "hello"})},
	}
	if err := raft.Save(raftlog.HardState{Term: 2, Vote: 1, Commit: 3}, ents); err != nil {
		t.Fatal(err)
	}
	state, err := storage.OpenStateDB(filepath.Join(dir, "state.db"), storage.StateOptions{MaxSessions: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.Apply(ents); err != nil {
		t.Fatal(err)
	}
	if err := raft.Close(); err != nil {
		t.Fatal(err)
	}
	if err := state.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestInspectCommand(t *testing.T) {
	dir := dataDir(t)
	r := runner{t: t}.run("inspect", "--data-dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "no problems found") || !strings.Contains(r.stdout, "3 entries, 1..3") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "may lag the applied index") {
		t.Errorf("inspect does not label the persisted commit index as a hint:\n%s", r.stdout)
	}
	lines := strings.Split(r.stdout, "\n")
	var topicRow string
	for _, l := range lines {
		if strings.HasPrefix(l, "q ") {
			topicRow = l
		}
	}
	if f := strings.Fields(topicRow); len(f) != 3 || f[1] != "1" || f[2] != "5" {
		t.Errorf("topic row %q, want q 1 5", topicRow)
	}

	r = runner{t: t}.run("inspect", "--data-dir", dir, "--json")
	var rep storage.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || rep.Term != 2 || rep.LastIndex != 3 || rep.AppliedIndex != 3 {
		t.Fatalf("--json: exit %d, %v, %+v", r.code, err, rep)
	}

	r = runner{t: t}.run("inspect", "--data-dir", filepath.Join(dir, "missing"))
	if r.code != exitOther || !strings.Contains(r.stderr, "missing") {
		t.Fatalf("missing dir: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestInspectFindsDamage(t *testing.T) {
	dir := dataDir(t)
	// A state.db that is not a bbolt file at all.
	path := filepath.Join(dir, "state.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runner{t: t}.run("inspect", "--data-dir", dir)
	if r.code == 0 || !strings.Contains(r.stderr, "state.db") {
		t.Fatalf("damaged state.db: exit %d, stderr %q; want non-zero naming state.db", r.code, r.stderr)
	}
}
