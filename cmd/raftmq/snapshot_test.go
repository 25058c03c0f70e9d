package main

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/snapshot"
)

// TestInspectShowsSnapshots: inspect lists each snapshot with index, term
// and size, verifies it, and a damaged one is a problem (exit 1).
func TestInspectShowsSnapshots(t *testing.T) {
	dir := dataDir(t)
	store, err := snapshot.Open(filepath.Join(dir, "snapshots"), "c1", 2)
	if err != nil {
		t.Fatal(err)
	}
	var metas []snapshot.Meta
	for _, idx := range []uint64{2, 3} {
		m, err := store.Create(snapshot.Meta{Index: idx, Term: 2, Voters: []uint64{1}}, func(w io.Writer) (int64, error) {
			n, err := w.Write([]byte(strings.Repeat("s", int(idx)*10)))
			return int64(n), err
		})
		if err != nil {
			t.Fatal(err)
		}
		metas = append(metas, m)
	}
	r := runner{t: t}.run("inspect", "--data-dir", dir, "--json")
	var rep inspectReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v, stdout %s stderr %s", r.code, err, r.stdout, r.stderr)
	}
	if len(rep.Snapshots) != 2 || !rep.Snapshots[0].Verified || rep.Snapshots[1].Index != 3 || rep.Snapshots[1].Bytes != 30 {
		t.Fatalf("snapshots %+v", rep.Snapshots)
	}
	path := store.Path(metas[0])
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r = runner{t: t}.run("inspect", "--data-dir", dir)
	if r.code != exitNo || !strings.Contains(r.stdout, "snapshots: 2") || !strings.Contains(r.stdout, "false") || !strings.Contains(r.stderr, "checksum") {
		t.Fatalf("damaged snapshot: exit %d, stdout:\n%s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// TestSnapshotCommandUnreachable: a server that does not answer is
// reported, with exit code 3.
func TestSnapshotCommandUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := runner{t: t}.run("snapshot", "--servers", addr, "--timeout", "200ms")
	if r.code != exitUnreachable || !strings.Contains(r.stderr, addr) {
		t.Fatalf("exit %d, stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}
