package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client/bench"
	"github.com/raftmq/raftmq/client/clienttest"
	"github.com/raftmq/raftmq/internal/testwait"
)

// memBroker is a fake broker with in-memory queue semantics.
func memBroker(t *testing.T) (*clienttest.Broker, *clienttest.Memory) {
	m := clienttest.NewMemory()
	b := clienttest.NewBroker(t)
	b.SetHandler(m.Handle)
	return b, m
}

// TestClientCommandsStory runs the client commands in order against one
// fake broker, checking output and exit codes.
func TestClientCommandsStory(t *testing.T) {
	b, m := memBroker(t)
	srv := []string{"--servers", b.Addr}
	steps := []struct {
		stdin  string
		args   []string
		code   int
		stdout string // exact
		stderr string // contained
	}{
		{"", []string{"topic", "list"}, 0, "", ""},
		{"", []string{"topic", "create", "q"}, 0, "created topic q\n", ""},
		{"", []string{"topic", "create", "q"}, exitNo, "", `topic "q" already exists`},
		{"", []string{"topic", "create", "--json", "p"}, 0, `{"created":true,"topic":"p"}` + "\n", ""},
		{"", []string{"topic", "list"}, 0, "q\np\n", ""},
		{"", []string{"topic", "list", "--json"}, 0, `["q","p"]` + "\n", ""},
		{"", []string{"produce", "--topic", "q", "a", "b"}, 0, "produced 2 messages to q\n", ""},
		{"c\nd\r\n\nlast", []string{"produce", "-t", "q", "--json"}, 0, `{"produced":4,"topic":"q"}` + "\n", ""},
		{"", []string{"produce", "-t", "nope", "x"}, exitNo, "", `no such topic "nope" (after 0 messages): create it with`},
		{"", []string{"consume", "-t", "q"}, 0, "a\n", ""},
		{"", []string{"consume", "-t", "q", "-n", "2"}, 0, "b\nc\n", ""},
		{"", []string{"consume", "-t", "q", "-n", "0", "--json"}, 0,
			`{"message":"d","topic":"q"}` + "\n" + `{"message":"","topic":"q"}` + "\n" + `{"message":"last","topic":"q"}` + "\n", ""},
		{"", []string{"consume", "-t", "q"}, exitNo, "", `queue "q" is empty`},
		{"", []string{"consume", "-t", "nope"}, exitNo, "", `no such topic "nope"`},
		{"", []string{"produce", "-t", "p", "x"}, 0, "produced 1 message to p\n", ""},
		{"", []string{"consume", "-t", "p", "-n", "3"}, 0, "x\n", `queue "p" emptied after 1 of 3 messages`},
	}
	for i, s := range steps {
		r := runner{t: t, stdin: s.stdin}.run(append(s.args, srv...)...)
		if r.code != s.code || r.stdout != s.stdout || !strings.Contains(r.stderr, s.stderr) || (s.stderr == "" && r.stderr != "") {
			t.Fatalf("step %d: raftmq %s\n exit %d stdout %q stderr %q\nwant exit %d stdout %q stderr ~%q",
				i, strings.Join(s.args, " "), r.code, r.stdout, r.stderr, s.code, s.stdout, s.stderr)
		}
	}
	if m.Depth("q") != 0 || m.Depth("p") != 0 {
		t.Fatalf("depths q=%d p=%d, want both drained", m.Depth("q"), m.Depth("p"))
	}
}

func TestClientCommandsUseClusterFile(t *testing.T) {
	b, _ := memBroker(t)
	path := writeCluster(t, clienttest.DeadAddr(t), b.Addr)
	r := runner{t: t}.run("topic", "create", "viafile", "--config", path)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	t.Setenv("RAFTMQ_CONFIG", path)
	r = runner{t: t}.run("topic", "list", "--servers", "127.0.0.1:1")
	if r.code != 0 || r.stdout != "viafile\n" {
		t.Fatalf("with RAFTMQ_CONFIG: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestClientExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		script clienttest.Step // answered to every request
		dead   bool
		code   int
		stderr string
	}{
		{"no leader", clienttest.Step{Reply: `{"success":false,"error":"no_leader"}`}, false, exitUnreachable, "no leader"},
		{"server timeout", clienttest.Step{Reply: `{"success":false,"error":"timeout"}`}, false, exitUnreachable, "retrying is safe"},
		{"no reply", clienttest.Step{Drop: true}, false, exitUnreachable, "timed out"},
		{"unreachable", clienttest.Step{}, true, exitUnreachable, "is a broker running at"},
		{"bad request", clienttest.Step{Reply: `{"success":false,"error":"bad_request","detail":"topic must not be empty"}`}, false, exitOther, "topic must not be empty"},
		{"too large", clienttest.Step{Reply: `{"success":false,"error":"too_large","detail":"message is 2 bytes; the limit is 1"}`}, false, exitOther, "the limit is 1"},
		{"garbage reply", clienttest.Step{Reply: `not json`}, false, exitOther, "malformed response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := clienttest.DeadAddr(t)
			if !tt.dead {
				b := clienttest.NewBroker(t)
				b.SetHandler(clienttest.Always(tt.script))
				addr = b.Addr
			}
			r := runner{t: t}.run("produce", "-t", "q", "m", "--servers", addr, "--timeout", "400ms")
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.code, tt.stderr)
			}
		})
	}
}

func TestStatusCommand(t *testing.T) {
	b, _ := memBroker(t)
	dead := clienttest.DeadAddr(t)
	servers := b.Addr + "," + dead
	r := runner{t: t}.run("status", "--servers", servers, "--timeout", "500ms")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "ID  ADDRESS") || !strings.HasSuffix(lines[0], "HEAP  ANON RSS  SNAPSHOT") ||
		!strings.Contains(lines[1], "Leader") || !strings.Contains(lines[2], "unreachable") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr)
	}
	if strings.Index(lines[1], b.Addr) != strings.Index(lines[0], "ADDRESS") {
		t.Errorf("columns not aligned:\n%s", r.stdout)
	}
	// The fake broker reports 3 MiB of data and 5 GiB free of 20.
	if strings.Index(lines[1], "3.0 MiB") != strings.Index(lines[0], "DATA") ||
		strings.Index(lines[1], "5.0 GiB of 20.0 GiB") != strings.Index(lines[0], "DISK FREE") {
		t.Errorf("disk use and free space missing or misaligned:\n%s", r.stdout)
	}

	r = runner{t: t}.run("status", "--servers", servers, "--timeout", "500ms", "--json")
	var rows []statusRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != 0 || len(rows) != 2 {
		t.Fatalf("--json: exit %d, %v, stdout %q", r.code, err, r.stdout)
	}
	if rows[0].Status == nil || rows[0].Status.Role != "Leader" || rows[0].Status.DiskFreeBytes != 5<<30 || rows[0].Status.DataBytes != 3<<20 ||
		rows[0].Error != "" || rows[1].Status != nil || rows[1].Error == "" {
		t.Fatalf("--json rows %+v", rows)
	}

	r = runner{t: t}.run("status", "--servers", dead, "--timeout", "300ms")
	if r.code != exitUnreachable || !strings.Contains(r.stderr, "no server answered") {
		t.Fatalf("all down: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestConsumeFollow(t *testing.T) {
	b, m := memBroker(t)
	m.Handle(wire.Request{Type: wire.TypeTopic, Method: wire.MethodPut, Topic: "q"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	done := make(chan result, 1)
	go func() {
		done <- runner{t: t}.runCtx(ctx, &stdout, "consume", "-t", "q", "--follow", "-n", "0", "--servers", b.Addr)
	}()
	for i, msg := range []string{"one", "two", "three"} {
		m.Handle(wire.Request{Type: wire.TypeMessage, Method: wire.MethodPut, Topic: "q", Message: msg})
		// Wait until the follower printed it (it polls with backoff up to 1s).
		testwait.For(t, 20*time.Second, fmt.Sprintf("follow to print %q", msg), func() bool {
			select {
			case r := <-done:
				t.Fatalf("follow ended early: %+v", r)
			default:
			}
			return strings.Count(stdout.String(), "\n") > i
		})
	}
	cancel() // what SIGINT does
	r := <-done
	if r.code != 0 || r.stdout != "one\ntwo\nthree\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	r = runner{t: t}.run("consume", "-t", "missing", "--follow", "--servers", b.Addr)
	if r.code != exitNo || !strings.Contains(r.stderr, `no such topic "missing"`) {
		t.Fatalf("follow on a missing topic: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestBenchCommand(t *testing.T) {
	b, m := memBroker(t)
	dir := t.TempDir()
	r := runner{t: t}.run("bench", "--servers", b.Addr, "--clients", "1,2", "--messages", "20", "--size", "32",
		"--fsync-dir", dir, "--fsync-count", "3", "--topic", "bt", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v: %q", err, r.stdout)
	}
	if len(rep.Results) != 2 || rep.Results[0].Clients != 1 || rep.Results[1].Clients != 2 || rep.SizeBytes != 32 ||
		rep.Fsync.Count != 3 || rep.Fsync.Dir != dir || m.Depth("bt") != 40 {
		t.Fatalf("report %+v, depth %d", rep, m.Depth("bt"))
	}
	r = runner{t: t}.run("bench", "--servers", b.Addr, "--clients", "1", "--messages", "5", "--fsync-dir", dir, "--fsync-count", "2")
	if r.code != 0 || !strings.Contains(r.stdout, "fsyncs/s") || !strings.Contains(r.stderr, "clients=1: 5 puts") {
		t.Fatalf("text: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestStatusSnapshotCell(t *testing.T) {
	tests := []struct {
		st   wire.Status
		want string
	}{
		{wire.Status{}, "-"},
		{wire.Status{SnapshotInProgress: true, SnapshotBytes: 3 << 20}, "writing 3.0 MiB"},
		{wire.Status{SnapshotInProgress: true, SnapshotSends: 2}, "writing 0 B, sending to 2"},
		{wire.Status{SnapshotSends: 1}, "sending to 1"},
	}
	for _, tt := range tests {
		if got := snapshotCell(tt.st); got != tt.want {
			t.Errorf("snapshotCell(%+v) = %q, want %q", tt.st, got, tt.want)
		}
	}
}

// TestConsumeLeased: --ack prints then acks; --exec acks on exit 0 and
// nacks otherwise (the message stays); topic info shows the counts.
func TestConsumeLeased(t *testing.T) {
	b, m := memBroker(t)
	srv := []string{"--servers", b.Addr}
	steps := []struct {
		args   []string
		code   int
		stdout string // exact
		stderr string // contained
	}{
		{[]string{"topic", "create", "q"}, 0, "created topic q\n", ""},
		{[]string{"topic", "create", "r", "--max-deliveries", "3"}, exitUsage, "", "--max-deliveries and --dead-letter go together"},
		{[]string{"produce", "-t", "q", "a", "b", "c", "d"}, 0, "produced 4 messages to q\n", ""},
		{[]string{"consume", "-t", "q", "--ack"}, 0, "a\n", ""},
		{[]string{"consume", "-t", "q", "--ack", "--json"}, 0, `{"deliveries":1,"message":"b","topic":"q"}` + "\n", ""},
		{[]string{"consume", "-t", "q", "--exec", "cat; echo ' ran'"}, 0, "c ran\n", ""},
		{[]string{"consume", "-t", "q", "--exec", "read x; test \"$x\" = c || exit 3"}, exitNo, "", `1 of 1 message not acked; last: "read x; test \"$x\" = c || exit 3" exited 3; the message was nacked (delivery 1)`},
		{[]string{"topic", "info", "q"}, 0, "topic           q\nready           1\nleased          0\ndelayed         0\nmax deliveries  none\ndead letter     -\n", ""},
		{[]string{"topic", "info", "q", "--json"}, 0, `{"name":"q","ready":1,"leased":0,"delayed":0,"max_deliveries":0}` + "\n", ""},
		{[]string{"topic", "info", "nope"}, exitNo, "", `no such topic "nope"`},
		{[]string{"consume", "-t", "q", "--exec", "cat >/dev/null", "-n", "0", "--lease", "1m"}, 0, "", ""},
		{[]string{"consume", "-t", "q", "--lease", "1m"}, exitUsage, "", "--lease needs --ack or --exec"},
		{[]string{"consume", "-t", "q", "--ack", "--lease", "10ms"}, exitUsage, "", "out of range"},
		{[]string{"consume", "-t", "q", "--wait", "21s"}, exitUsage, "", "out of range"},
		{[]string{"consume", "-t", "q", "--ack"}, exitNo, "", `queue "q" is empty`},
	}
	for i, s := range steps {
		r := runner{t: t}.run(append(s.args, srv...)...)
		if r.code != s.code || r.stdout != s.stdout || !strings.Contains(r.stderr, s.stderr) || (s.stderr == "" && r.stderr != "") {
			t.Fatalf("step %d: raftmq %s\n exit %d stdout %q stderr %q\nwant exit %d stdout %q stderr ~%q",
				i, strings.Join(s.args, " "), r.code, r.stdout, r.stderr, s.code, s.stdout, s.stderr)
		}
	}
	if m.Depth("q") != 0 || m.Leased("q") != 0 {
		t.Fatalf("q: %d ready, %d leased; want everything acked", m.Depth("q"), m.Leased("q"))
	}
}
