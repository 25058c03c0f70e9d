package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testwait"
)

var unitFiles = []string{"raftmq.service", "raftmq@.service"}

// hostUnitDir is where the host keeps systemd's own units (targets etc.),
// which `verify --root` needs to resolve the dependencies of ours.
func hostUnitDir() string {
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if fileExists(filepath.Join(d, "sysinit.target")) {
			return d
		}
	}
	return ""
}

// verifyRoot makes a file system root with systemd's units, ours (each passed
// through mutate), the raftmq binary at /usr/local/bin and a cluster file.
func verifyRoot(t *testing.T, bin string, mutate func(unit string) string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/lib/systemd", "etc/systemd/system", "etc/raftmq", "usr/local/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, time.Minute, "cp", "-a", hostUnitDir(), filepath.Join(root, "usr/lib/systemd/system"))
	for _, name := range unitFiles {
		text, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, "etc/systemd/system", name)
		if err := os.WriteFile(dst, []byte(mutate(string(text))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if bin != "" {
		mustRun(t, time.Minute, "cp", bin, filepath.Join(root, "usr/local/bin/raftmq"))
	}
	cluster := `{"addresses":[{"ip":"127.0.0.1","port":5550,"internal_port":5560}]}`
	if err := os.WriteFile(filepath.Join(root, "etc/raftmq/cluster.json"), []byte(cluster), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestSystemdUnitsVerify runs `systemd-analyze verify` on the units in a
// root that holds the real binary. verify exits 0 on an unknown key and only
// prints a warning, so any output at all fails the test; the broken variants
// show that the check sees such mistakes.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd)")
	}
	if hostUnitDir() == "" {
		t.Skip("no systemd unit directory with sysinit.target on this host")
	}
	bin := raftmqBinary(t)

	tests := []struct {
		name      string
		bin       string
		mutate    func(string) string
		wantClean bool
		wantOut   string // substring of the output when not clean
	}{
		{name: "as shipped", bin: bin, mutate: func(s string) string { return s }, wantClean: true},
		{
			name:    "unknown key",
			bin:     bin,
			mutate:  func(s string) string { return strings.Replace(s, "NoNewPrivileges=", "NoNewPrivilegez=", 1) },
			wantOut: "Unknown key",
		},
		{
			name:    "bad value",
			bin:     bin,
			mutate:  func(s string) string { return strings.Replace(s, "ProtectSystem=strict", "ProtectSystem=bogus", 1) },
			wantOut: "protect system value",
		},
		{name: "no binary", bin: "", mutate: func(s string) string { return s }, wantOut: "/usr/local/bin/raftmq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := verifyRoot(t, tt.bin, tt.mutate)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := runCmd(ctx, "", analyze, "verify", "--root="+root,
				"raftmq.service", "raftmq@0.service", "raftmq@2.service")
			if err != nil {
				t.Fatal(err)
			}
			out := strings.TrimSpace(res.stdout + res.stderr)
			clean := res.code == 0 && out == ""
			if clean != tt.wantClean {
				t.Fatalf("clean = %v, want %v: %v", clean, tt.wantClean, res)
			}
			if !tt.wantClean && !strings.Contains(out, tt.wantOut) {
				t.Fatalf("output does not mention %q: %v", tt.wantOut, res)
			}
		})
	}
}

// TestSystemdUnitsSecurity keeps the units' hardening from eroding: the
// exposure that `systemd-analyze security` computes (0 best, 10 worst; 1.2
// when written) must stay at or below maxExposure.
func TestSystemdUnitsSecurity(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd)")
	}
	if hostUnitDir() == "" {
		t.Skip("no systemd unit directory with sysinit.target on this host")
	}
	const maxExposure = "2.0" // the threshold flag takes tenths: 20
	root := verifyRoot(t, raftmqBinary(t), func(s string) string { return s })
	for _, unit := range []string{"raftmq.service", "raftmq@0.service"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := runCmd(ctx, "", analyze, "security", "--offline=true", "--root="+root, "--threshold=20", unit)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if res.code != 0 {
			t.Errorf("%s: exposure above %s:\n%s%s", unit, maxExposure, tail(res.stdout, 30), res.stderr)
			continue
		}
		t.Logf("%s: %s", unit, strings.TrimSpace(tail(res.stdout, 1)))
	}
}

// execStart returns the argv of a unit's ExecStart= line.
func execStart(t *testing.T, unit string) []string {
	t.Helper()
	text, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(text), "\n") {
		if rest, ok := strings.CutPrefix(line, "ExecStart="); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("%s has no ExecStart=", unit)
	return nil
}

// TestSystemdExecStart runs each unit's ExecStart command line, with the
// specifiers systemd would fill in, against the real binary: the flags must
// be ones `raftmq serve` accepts, the node must answer, and SIGTERM (the
// units' KillSignal) must stop it with exit status 0 well within
// TimeoutStopSec, or systemd would count a clean stop as a failure.
func TestSystemdExecStart(t *testing.T) {
	bin := raftmqBinary(t)
	for _, unit := range unitFiles {
		t.Run(unit, func(t *testing.T) {
			dir := t.TempDir()
			ports := freePorts(t, 2)
			cluster := filepath.Join(dir, "cluster.json")
			body := fmt.Sprintf(`{"addresses":[{"ip":"127.0.0.1","port":%d,"internal_port":%d}]}`, ports[0], ports[1])
			if err := os.WriteFile(cluster, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			state := filepath.Join(dir, "state")
			if err := os.Mkdir(state, 0o750); err != nil {
				t.Fatal(err)
			}
			argv := execStart(t, unit)
			if argv[0] != "/usr/local/bin/raftmq" {
				t.Fatalf("ExecStart runs %q, want /usr/local/bin/raftmq", argv[0])
			}
			args := make([]string, 0, len(argv))
			for _, a := range argv[1:] {
				a = strings.ReplaceAll(a, "%i", "0")
				a = strings.ReplaceAll(a, "${STATE_DIRECTORY}", state)
				a = strings.ReplaceAll(a, "/etc/raftmq/cluster.json", cluster)
				args = append(args, a)
			}
			cmd := exec.Command(bin, args...)
			// The single-node unit takes its cluster from the environment
			// file, as deploy/README.md shows for changing the address.
			cmd.Env = append(os.Environ(), "RAFTMQ_LOG_FORMAT=json", "RAFTMQ_CONFIG="+cluster)
			logPath := filepath.Join(dir, "serve.log")
			logFile, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer logFile.Close()
			cmd.Stdout, cmd.Stderr = logFile, logFile
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var waitErr error
			waitDone := make(chan struct{})
			go func() { waitErr = cmd.Wait(); close(waitDone) }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill() // an error only says it already exited
				<-waitDone
			})
			logTail := func() string { b, _ := os.ReadFile(logPath); return string(b) }

			servers := fmt.Sprintf("127.0.0.1:%d", ports[0])
			testwait.Err(t, 30*time.Second, "node answers status", func() error {
				select {
				case <-waitDone:
					t.Fatalf("serve exited: %v\n%s", waitErr, logTail())
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				res, err := runCmd(ctx, "", bin, "status", "--servers", servers, "--timeout", "2s")
				if err != nil {
					return err
				}
				if res.code != 0 {
					return fmt.Errorf("status: %v", res)
				}
				return nil
			})
			if _, err := os.Stat(filepath.Join(state, "raft.db")); err != nil {
				t.Fatalf("no raft.db in the state directory: %v", err)
			}

			start := time.Now()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			const stopWithin = 15 * time.Second // TimeoutStopSec=30s
			select {
			case <-waitDone:
				if waitErr != nil {
					t.Fatalf("serve after SIGTERM: %v, want exit status 0\n%s", waitErr, logTail())
				}
				t.Logf("stopped on SIGTERM in %v", time.Since(start).Round(time.Millisecond))
			case <-time.After(stopWithin):
				t.Fatalf("serve still running %v after SIGTERM\n%s", stopWithin, logTail())
			}
		})
	}
}
