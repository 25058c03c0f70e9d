package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testwait"
)

const (
	envDockerTests = "RAFTMQ_DOCKER_TESTS"
	testImageTag   = "raftmq:test"
	// baseBuildTimeout covers mkbase.sh's first run: debootstrap and two
	// apt-get layers, 11 minutes on an idle 2-core machine, 20 under a load
	// of 12. Later runs reuse the base images and take a second.
	baseBuildTimeout = 40 * time.Minute
	// imageBuildTimeout covers module downloads and compiling raftmq.
	imageBuildTimeout = 20 * time.Minute
	// stopWithin is how soon `docker stop` must return: far below the
	// -t grace period, so a pass means SIGTERM stopped the broker, not SIGKILL.
	stopWithin  = 15 * time.Second
	stopGraceS  = "30"
	readyWithin = 60 * time.Second
)

// requireDocker skips the test unless RAFTMQ_DOCKER_TESTS=1 and a Docker
// engine answers.
func requireDocker(t *testing.T) {
	t.Helper()
	if os.Getenv(envDockerTests) != "1" {
		t.Skipf("set %s=1 to build the image and run it in Docker (slow: the first build makes the base images with debootstrap, minutes)", envDockerTests)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := runCmd(ctx, "", "docker", "version", "--format", "{{.Server.Version}}")
	if err != nil || res.code != 0 {
		t.Skipf("no Docker engine answers (docker version: %v %v)", err, res)
	}
}

var image struct {
	once sync.Once
	err  error
}

// testImage builds the base images (deploy/mkbase.sh, a no-op when they
// exist) and the raftmq image, once per test binary.
func testImage(t *testing.T) string {
	t.Helper()
	image.once.Do(func() { image.err = buildImage(t) })
	if image.err != nil {
		t.Fatal(image.err)
	}
	return testImageTag
}

func buildImage(t *testing.T) error {
	root := repoRoot(t)
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("raftmq-image-build-%d.log", os.Getpid()))
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	// step runs a command with all its output in the log file; its progress
	// lines (mkbase's own, docker build's steps) also go to t.Log, so a
	// minutes-long first build shows where it is under go test -v.
	step := func(timeout time.Duration, name string, args ...string) error {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = root
		pr, pw := io.Pipe()
		cmd.Stdout, cmd.Stderr = pw, pw
		fmt.Fprintf(logFile, "\n$ %s %s\n", name, strings.Join(args, " "))
		scanned := make(chan struct{})
		go func() {
			defer close(scanned)
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				line := sc.Text()
				fmt.Fprintln(logFile, line)
				if strings.HasPrefix(line, "[mkbase") || strings.HasPrefix(line, "Step ") {
					t.Log(line)
				}
			}
			_, _ = io.Copy(logFile, pr) // a line over 1 MiB: keep draining
		}()
		err := cmd.Run()
		pw.Close()
		<-scanned
		t.Logf("%s %s: %v (%v)", name, args[0], time.Since(start).Round(time.Second), errOrOK(err))
		if err != nil {
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("%s %s: %w\n...%s\n(full log: %s)", name, strings.Join(args, " "), err, tail(string(out), 40), logPath)
		}
		return nil
	}
	if err := step(baseBuildTimeout, "bash", "deploy/mkbase.sh"); err != nil {
		return err
	}
	args := []string{"build", "-t", testImageTag}
	for _, name := range []string{"GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE"} {
		if v := goEnv(name); v != "" {
			args = append(args, "--build-arg", name+"="+v)
		}
	}
	if err := step(imageBuildTimeout, "docker", append(args, ".")...); err != nil {
		return err
	}
	size := mustRun(t, time.Minute, "docker", "image", "inspect", "--format", "{{.Size}}", testImageTag)
	t.Logf("image %s: %s bytes", testImageTag, strings.TrimSpace(size))
	os.Remove(logPath) // kept only when a step failed
	return nil
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}

func goEnv(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := runCmd(ctx, "", goTool(), "env", name)
	if err != nil || res.code != 0 {
		return ""
	}
	return strings.TrimSpace(res.stdout)
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// uniqueName names this run's containers, volumes and compose projects.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano()%1_000_000)
}

// raftmqIn runs the image's own CLI inside a container.
func raftmqIn(t *testing.T, container, stdin string, args ...string) result {
	t.Helper()
	return raftmqInEnv(t, container, nil, stdin, args...)
}

// raftmqInEnv is raftmqIn with extra environment variables (NAME=value).
func raftmqInEnv(t *testing.T, container string, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dockerArgs := []string{"exec"}
	if stdin != "" {
		dockerArgs = append(dockerArgs, "-i")
	}
	for _, e := range env {
		dockerArgs = append(dockerArgs, "-e", e)
	}
	dockerArgs = append(append(dockerArgs, container, "raftmq"), args...)
	res, err := runCmd(ctx, stdin, "docker", dockerArgs...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// expectCLI checks a CLI call's exit code and, when want is not nil, its
// output lines.
func expectCLI(t *testing.T, res result, wantCode int, want []string, what string) {
	t.Helper()
	if res.code != wantCode {
		t.Fatalf("%s: %v, want exit %d", what, res, wantCode)
	}
	if want == nil {
		return
	}
	got := strings.Fields(strings.TrimSpace(res.stdout))
	if !slices.Equal(got, want) {
		t.Fatalf("%s: printed %q, want %q (%v)", what, got, want, res)
	}
}

func waitAnswers(t *testing.T, container string, statusArgs ...string) {
	t.Helper()
	testwait.Err(t, readyWithin, container+" answers status", func() error {
		state := strings.TrimSpace(mustRun(t, 30*time.Second, "docker", "inspect", "--format", "{{.State.Status}}", container))
		if state != "running" {
			logs, _ := runCmd(context.Background(), "", "docker", "logs", "--tail", "30", container)
			t.Fatalf("%s is %s, not running: %s%s", container, state, logs.stdout, logs.stderr)
		}
		if res := raftmqIn(t, container, "", append([]string{"status"}, statusArgs...)...); res.code != 0 {
			return fmt.Errorf("status: %v", res)
		}
		return nil
	})
}

// stopGracefully runs docker stop and requires a prompt exit with status 0.
func stopGracefully(t *testing.T, container string) {
	t.Helper()
	start := time.Now()
	mustRun(t, time.Minute, "docker", "stop", "-t", stopGraceS, container)
	took := time.Since(start)
	state := mustRun(t, 30*time.Second, "docker", "inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", container)
	if strings.TrimSpace(state) != "0 false" {
		logs, _ := runCmd(context.Background(), "", "docker", "logs", "--tail", "30", container)
		t.Fatalf("%s after docker stop: exit code and OOM %q, want \"0 false\"\n%s%s", container, state, logs.stdout, logs.stderr)
	}
	if took > stopWithin {
		t.Fatalf("docker stop %s took %v, want under %v: SIGTERM did not stop it", container, took, stopWithin)
	}
	t.Logf("docker stop %s: exit 0 in %v", container, took.Round(time.Millisecond))
}

// TestDockerImage builds the image, checks its metadata, then uses the
// image's own CLI in a running container: topics, produce, consume, the
// health check, a graceful docker stop, and a new container on the same
// volume that finds the data.
func TestDockerImage(t *testing.T) {
	requireDocker(t)
	img := testImage(t)

	var meta struct {
		Config struct {
			User         string
			Entrypoint   []string
			Cmd          []string
			ExposedPorts map[string]any
			Volumes      map[string]any
			Healthcheck  *struct{ Test []string }
		}
	}
	out := mustRun(t, time.Minute, "docker", "image", "inspect", "--format", "{{json .}}", img)
	if err := json.Unmarshal([]byte(out), &meta); err != nil {
		t.Fatal(err)
	}
	c := meta.Config
	checks := []struct {
		what string
		ok   bool
	}{
		{"non-root user raftmq", strings.HasPrefix(c.User, "raftmq")},
		{"entrypoint raftmq", slices.Equal(c.Entrypoint, []string{"raftmq"})},
		{"cmd serve in the volume on all addresses", slices.Equal(c.Cmd, []string{"serve", "--data-dir", "/var/lib/raftmq", "--listen-ip", "0.0.0.0"})},
		{"exposes 5550", c.ExposedPorts["5550/tcp"] != nil},
		{"exposes 5560", c.ExposedPorts["5560/tcp"] != nil},
		{"exposes 9550 (metrics)", c.ExposedPorts["9550/tcp"] != nil},
		{"volume /var/lib/raftmq", c.Volumes["/var/lib/raftmq"] != nil},
		{"health check uses raftmq status", c.Healthcheck != nil && slices.Contains(c.Healthcheck.Test, "status")},
	}
	for _, ck := range checks {
		if !ck.ok {
			t.Errorf("image config: want %s; have %+v", ck.what, c)
		}
	}

	volume := uniqueName("raftmq-test-data")
	first := uniqueName("raftmq-test-a")
	second := uniqueName("raftmq-test-b")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = runCmd(ctx, "", "docker", "rm", "-f", "-v", first, second)
		_, _ = runCmd(ctx, "", "docker", "volume", "rm", "-f", volume)
	})
	mustRun(t, time.Minute, "docker", "run", "-d", "--name", first, "-v", volume+":/var/lib/raftmq", img)
	waitAnswers(t, first)

	expectCLI(t, raftmqIn(t, first, "", "topic", "create", "orders"), 0, nil, "topic create")
	expectCLI(t, raftmqIn(t, first, "", "topic", "create", "orders"), 1, nil, "topic create again (exists)")
	expectCLI(t, raftmqIn(t, first, "", "produce", "--topic", "orders", "m1", "m2"), 0, nil, "produce args")
	expectCLI(t, raftmqIn(t, first, "m3\nm4\n", "produce", "--topic", "orders"), 0, nil, "produce stdin")
	expectCLI(t, raftmqIn(t, first, "", "consume", "--topic", "orders", "-n", "1"), 0, []string{"m1"}, "consume one")
	expectCLI(t, raftmqIn(t, first, "", "produce", "--topic", "nope", "x"), 1, nil, "produce to a missing topic")

	// The broker itself (pid 1) runs as the image's user.
	status := mustRun(t, 30*time.Second, "docker", "exec", first, "cat", "/proc/1/status")
	if !strings.Contains(status, "\nUid:\t10001\t") {
		t.Errorf("pid 1 does not run as uid 10001:\n%s", status)
	}
	testwait.Err(t, 45*time.Second, "health check reports healthy", func() error {
		h := strings.TrimSpace(mustRun(t, 30*time.Second, "docker", "inspect", "--format", "{{.State.Health.Status}}", first))
		if h != "healthy" {
			return fmt.Errorf("health %q", h)
		}
		return nil
	})

	stopGracefully(t, first)
	mustRun(t, time.Minute, "docker", "rm", first)

	// A new container on the same volume: the data lives in the volume.
	mustRun(t, time.Minute, "docker", "run", "-d", "--name", second, "-v", volume+":/var/lib/raftmq", img)
	waitAnswers(t, second)
	expectCLI(t, raftmqIn(t, second, "", "topic", "list"), 0, []string{"orders"}, "topic list after restart")
	expectCLI(t, raftmqIn(t, second, "", "consume", "--topic", "orders", "-n", "0"), 0, []string{"m2", "m3", "m4"}, "consume rest after restart")
	expectCLI(t, raftmqIn(t, second, "", "consume", "--topic", "orders", "-n", "1"), 1, nil, "consume from an empty queue")
	stopGracefully(t, second)
}
