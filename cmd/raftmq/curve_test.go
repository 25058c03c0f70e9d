package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	zmq "github.com/pebbe/zmq4"
)

func TestKeygen(t *testing.T) {
	r := runner{t: t}.run("keygen", "--json")
	var kp struct{ Public, Secret string }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &kp) != nil {
		t.Fatalf("keygen --json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if pub, err := zmq.AuthCurvePublic(kp.Secret); err != nil || pub != kp.Public || len(pub) != 40 {
		t.Fatalf("keygen --json: public %q does not belong to secret %q (%q, %v)", kp.Public, kp.Secret, pub, err)
	}
	r = runner{t: t}.run("keygen")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "public: ") || !strings.HasPrefix(lines[1], "secret: ") {
		t.Fatalf("keygen: exit %d, stdout %q", r.code, r.stdout)
	}
	if again := (runner{t: t}).run("keygen"); again.stdout == r.stdout {
		t.Fatalf("two runs printed the same keys")
	}
}

// curveFiles writes a 3-node cluster file with curve_public keys, node 0's
// secret key file (mode perm) and a clients file; it returns their paths
// and node 0's secret.
func curveFiles(t *testing.T, perm os.FileMode) (cluster, secretFile, clientsFile, secret string) {
	t.Helper()
	dir := t.TempDir()
	var parts []string
	for i := 0; i < 3; i++ {
		pub, sec, err := zmq.NewCurveKeypair()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			secret = sec
		}
		parts = append(parts, fmt.Sprintf(`{"ip":"10.0.0.%d","port":7000,"internal_port":6000,"curve_public":%q}`, i+1, pub))
	}
	cluster = filepath.Join(dir, "cluster.json")
	secretFile = filepath.Join(dir, "node0.key")
	clientsFile = filepath.Join(dir, "clients")
	for _, f := range []struct {
		path, content string
		perm          os.FileMode
	}{
		{cluster, `{"addresses":[` + strings.Join(parts, ",") + `]}`, 0o644},
		{secretFile, secret + "\n", perm},
		{clientsFile, "*\n", 0o644},
	} {
		if err := os.WriteFile(f.path, []byte(f.content), f.perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f.path, f.perm); err != nil {
			t.Fatal(err)
		}
	}
	return cluster, secretFile, clientsFile, secret
}

func TestServeCurveFlags(t *testing.T) {
	cluster, secretFile, clientsFile, secret := curveFiles(t, 0o600)
	r := runner{t: t}.run("serve", "--config", cluster, "--curve-secret-file", secretFile, "--curve-clients-file", clientsFile)
	if r.code != 0 || r.served == nil || r.served.CurveSecret != secret || !r.served.CurveClients.Any {
		t.Fatalf("exit %d, stderr %q, served %+v", r.code, r.stderr, r.served)
	}
	t.Setenv("RAFTMQ_CURVE_SECRET_FILE", secretFile)
	if r := (runner{t: t}).run("serve", "--config", cluster); r.code != 0 || r.served == nil || r.served.CurveSecret != secret {
		t.Fatalf("secret file from env: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCurveUsageErrors(t *testing.T) {
	cluster, secretFile, _, _ := curveFiles(t, 0o600)
	_, openSecret, _, _ := curveFiles(t, 0o644)
	plain := writeCluster(t, "10.0.0.1:7000")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--config", cluster, "--curve-secret-file", openSecret}, "chmod 600"},
		{[]string{"serve", "--config", cluster}, "curve_secret_file is not set"},
		{[]string{"serve", "--config", plain, "--curve-secret-file", secretFile}, "carries no \"curve_public\" keys"},
		{[]string{"status", "--config", cluster}, "pass --curve-secret-file (env RAFTMQ_CURVE_SECRET_FILE)"},
		{[]string{"status", "--curve-secret-file", secretFile}, "needs --config"},
		{[]string{"status", "--config", cluster, "--curve-secret-file", openSecret}, "chmod 600"},
	}
	for _, tt := range tests {
		r := runner{t: t}.run(tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("raftmq %v: exit %d, stderr %q; want exit %d with %q", tt.args, r.code, r.stderr, exitUsage, tt.want)
		}
	}
}
