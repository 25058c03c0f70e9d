package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// result is what a finished command printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// runCmd runs name with args and stdin until it exits or ctx is done. err is
// set only when the command could not run to its end (not found, killed at
// the deadline); a non-zero exit is reported in result.code.
func runCmd(ctx context.Context, stdin, name string, args ...string) (result, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s %s: %w (%v)", name, strings.Join(args, " "), ctx.Err(), err)
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
		return res, nil
	case err != nil:
		return res, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return res, nil
}

// mustRun runs a command that has to succeed within timeout and returns its
// stdout.
func mustRun(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := runCmd(ctx, "", name, args...)
	if err != nil {
		t.Fatalf("%v: %v", err, res)
	}
	if res.code != 0 {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), res)
	}
	return res.stdout
}

// repoRoot is the module root: tests run in the package directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root not found above the deploy package: %v", err)
	}
	return dir
}

// goTool is the go command of the toolchain running the test.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// shared holds what several tests use, built once per test binary.
var shared struct {
	dir     string // removed by TestMain
	binOnce sync.Once
	bin     string
	binErr  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "raftmq-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// raftmqBinary builds ./cmd/raftmq once and returns the binary's path.
func raftmqBinary(t *testing.T) string {
	t.Helper()
	shared.binOnce.Do(func() { shared.bin, shared.binErr = buildRaftmq(t, shared.dir) })
	if shared.binErr != nil {
		t.Fatal(shared.binErr)
	}
	return shared.bin
}

// buildRaftmq builds ./cmd/raftmq into dir and returns the binary's path.
func buildRaftmq(t *testing.T, dir string) (string, error) {
	t.Helper()
	bin := filepath.Join(dir, "raftmq")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", bin, "./cmd/raftmq")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/raftmq: %w\n%s", err, out)
	}
	t.Logf("built raftmq in %v", time.Since(start).Round(time.Millisecond))
	return bin, nil
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment
// ago (all held open together so they differ).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
