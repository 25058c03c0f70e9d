package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/config"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is one in-process run of the CLI.
type result struct {
	code           int
	stdout, stderr string
	served         *config.Node // the config serve was called with, nil if not called
}

// runner runs the app in-process. serve, when nil, records the config and
// returns at once.
type runner struct {
	t     *testing.T
	stdin string
	serve func(ctx context.Context, cfg config.Node, log zerolog.Logger) error
}

func (c runner) run(args ...string) result {
	return c.runCtx(context.Background(), nil, args...)
}

func (c runner) runCtx(ctx context.Context, stdout *syncBuffer, args ...string) result {
	c.t.Helper()
	if stdout == nil {
		stdout = &syncBuffer{}
	}
	var stderr syncBuffer
	var res result
	serve := c.serve
	e := env{
		stdin: strings.NewReader(c.stdin), stdout: stdout, stderr: &stderr,
		serve: func(ctx context.Context, cfg config.Node, log zerolog.Logger) error {
			res.served = &cfg
			if serve != nil {
				return serve(ctx, cfg, log)
			}
			return nil
		},
	}
	res.code = run(ctx, e, append([]string{"raftmq"}, args...))
	res.stdout, res.stderr = stdout.String(), stderr.String()
	if res.code != 0 && strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 && !strings.Contains(res.stdout, "USAGE") {
		c.t.Errorf("raftmq %s: exit %d with a multi-line error:\n%s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res
}

// writeCluster writes a cluster file and returns its path.
func writeCluster(t *testing.T, addrs ...string) string {
	t.Helper()
	var parts []string
	for i, a := range addrs {
		host, port, _ := strings.Cut(a, ":")
		parts = append(parts, fmt.Sprintf(`{"ip":%q,"port":%s,"internal_port":%d}`, host, port, 6000+i))
	}
	path := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(path, []byte(`{"addresses":[`+strings.Join(parts, ",")+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"topic", "frobnicate"}, `unknown topic command "frobnicate"`},
		{[]string{"topic", "create"}, "exactly one topic NAME"},
		{[]string{"topic", "create", "a", "b"}, "exactly one topic NAME"},
		{[]string{"topic", "list", "extra"}, "takes no arguments"},
		{[]string{"status", "--no-such-flag"}, "flag provided but not defined"},
		{[]string{"produce", "x"}, "needs --topic"},
		{[]string{"consume"}, "needs --topic"},
		{[]string{"consume", "-t", "q", "-n", "-1"}, "-n -1 must be >= 0"},
		{[]string{"status", "--servers", "nohostport"}, `"nohostport" is not ip:port`},
		{[]string{"status", "--servers", ""}, "--servers is empty"},
		{[]string{"status", "--timeout", "0s"}, "--timeout 0s must be positive"},
		{[]string{"status", "--config", "/no/such/cluster.json"}, "/no/such/cluster.json"},
		{[]string{"bench", "--messages", "5", "--duration", "1s"}, "not both"},
		{[]string{"bench", "--clients", "0"}, "clients: 0 is not in 1..1024"},
		{[]string{"serve", "--election-ticks", "1"}, "election_ticks"},
		{[]string{"serve", "--config", "/no/such/cluster.json"}, "/no/such/cluster.json"},
		{[]string{"serve", "--log-level", "loud"}, "log_level"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runner{t: t}.run(tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) || !strings.HasPrefix(r.stderr, "raftmq: ") {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tt.want)
			}
			if r.served != nil {
				t.Fatal("serve ran despite a usage error")
			}
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{}, {"--help"}, {"serve", "--help"}, {"topic"}, {"bench", "--help"}} {
		r := runner{t: t}.run(args...)
		if r.code != 0 || !strings.Contains(r.stdout, "USAGE") {
			t.Errorf("raftmq %v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a\nb\n", "a; b"},
		{"  a \n\n  b  c\n", "a; b  c"},
	}
	for _, tt := range tests {
		if got := oneLine(tt.in); got != tt.want {
			t.Errorf("oneLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoggerFormat(t *testing.T) {
	tests := []struct {
		format   string
		terminal bool
		json     bool
	}{
		{"auto", false, true},
		{"auto", true, false},
		{"json", true, true},
		{"console", false, false},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log, err := newLogger("warn", tt.format, &buf, tt.terminal)
		if err != nil {
			t.Fatal(err)
		}
		log.Info().Msg("hidden")
		log.Warn().Str("k", "v").Msg("shown")
		out := buf.String()
		if strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
			t.Errorf("%s: level warn printed %q", tt.format, out)
		}
		if isJSON := strings.HasPrefix(out, "{"); isJSON != tt.json {
			t.Errorf("format %s terminal %v: output %q, want json=%v", tt.format, tt.terminal, out, tt.json)
		}
	}
	if _, err := newLogger("info", "xml", &bytes.Buffer{}, false); err == nil {
		t.Error("format xml: want an error")
	}
}
