package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Key pairs from the ZeroMQ CURVE test vectors (zmq_curve(7)).
const (
	testKeyA       = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID" // public
	testSecretA    = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs" // secret of testKeyA
	testKeyB       = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" // public
	testKeyBSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
)

func TestCheckCurveKey(t *testing.T) {
	tests := []struct {
		key     string
		wantErr string // "" = valid
	}{
		{testKeyA, ""},
		{testKeyBSecret, ""},
		{"", "0 characters"},
		{testKeyA[:39], "39 characters"},
		{testKeyA + "0", "41 characters"},
		{testKeyA[:10] + "~" + testKeyA[11:], "position 11"},
		{testKeyA[:10] + " " + testKeyA[11:], "position 11"},
		{"#####" + testKeyA[5:], "above 32 bits"}, // '#' is digit 84: 84*85^4+... > 2^32
	}
	for _, tt := range tests {
		err := CheckCurveKey(tt.key)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("CheckCurveKey(%q) = %v, want nil", tt.key, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("CheckCurveKey(%q) = %v, want an error with %q", tt.key, err, tt.wantErr)
		}
	}
}

func TestLoadClusterCurveKeys(t *testing.T) {
	tests := []struct {
		name     string
		content  string
		curve    bool
		wantErrs []string
	}{
		{"none", `{"addresses": [{"ip": "10.0.0.1", "port": 1, "internal_port": 2}, {"ip": "10.0.0.2", "port": 1, "internal_port": 2}]}`, false, nil},
		{"all", `{"addresses": [{"ip": "10.0.0.1", "port": 1, "internal_port": 2, "curve_public": "` + testKeyA + `"},
			{"ip": "10.0.0.2", "port": 1, "internal_port": 2, "curve_public": "` + testKeyB + `"}]}`, true, nil},
		{"some", `{"addresses": [{"ip": "10.0.0.1", "port": 1, "internal_port": 2, "curve_public": "` + testKeyA + `"},
			{"ip": "10.0.0.2", "port": 1, "internal_port": 2}]}`, false, []string{"addresses[1].curve_public is missing: 1 of 2 nodes"}},
		{"malformed", `{"addresses": [{"ip": "10.0.0.1", "port": 1, "internal_port": 2, "curve_public": "short"}]}`, false,
			[]string{"addresses[0].curve_public is 5 characters long"}},
		{"not a string", `{"addresses": [{"ip": "10.0.0.1", "port": 1, "internal_port": 2, "curve_public": 7}]}`, false,
			[]string{"addresses[0].curve_public must be a string"}},
		{"shared key", `{"addresses": [{"ip": "10.0.0.1", "port": 1, "internal_port": 2, "curve_public": "` + testKeyA + `"},
			{"ip": "10.0.0.2", "port": 1, "internal_port": 2, "curve_public": "` + testKeyA + `"}]}`, false,
			[]string{"addresses[1].curve_public is the same key as addresses[0].curve_public"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadCluster(writeFile(t, tt.content))
			if tt.wantErrs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if c.Curve() != tt.curve {
					t.Fatalf("Curve() = %v, want %v", c.Curve(), tt.curve)
				}
				return
			}
			if err == nil {
				t.Fatalf("loaded %+v, want errors %q", c, tt.wantErrs)
			}
			for _, w := range tt.wantErrs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func writeKeyFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

func TestLoadCurveSecret(t *testing.T) {
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		wantErr string
	}{
		{"owner only", testSecretA + "\n", 0o600, ""},
		{"read only", "  " + testSecretA, 0o400, ""},
		{"group readable", testSecretA, 0o640, "mode 0640: anyone but its owner may read it; run `chmod 600"},
		{"world readable", testSecretA, 0o604, "mode 0604"},
		{"not a key", "hello", 0o600, "the key is 5 characters long"},
		{"two keys", testSecretA + "\n" + testKeyBSecret, 0o600, "characters long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := LoadCurveSecret(writeKeyFile(t, tt.content, tt.mode))
			if tt.wantErr == "" {
				if err != nil || key != testSecretA {
					t.Fatalf("LoadCurveSecret = %q, %v; want the key", key, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrCurveFile) {
				t.Fatalf("LoadCurveSecret = %q, %v; want ErrCurveFile with %q", key, err, tt.wantErr)
			}
		})
	}
	if _, err := LoadCurveSecret(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want ErrNotExist", err)
	}
}

func TestLoadCurveClients(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    CurveClients
		wantErr string
	}{
		{"keys", "# ops team\n" + testKeyA + "\n\n  " + testKeyB + "  \n" + testKeyA + "\n", CurveClients{Keys: []string{testKeyA, testKeyB}}, ""},
		{"any", "*\n", CurveClients{Any: true}, ""},
		{"any and keys", "*\n" + testKeyA + "\n", CurveClients{}, "so it must be the only entry"},
		{"bad line", testKeyA + "\nnope\n", CurveClients{}, "line 2: \"nope\" is 4 characters long"},
		{"empty", "# nobody\n", CurveClients{}, "lists no key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, err := LoadCurveClients(writeKeyFile(t, tt.content, 0o644))
			if tt.wantErr == "" {
				if err != nil || cc.Any != tt.want.Any || strings.Join(cc.Keys, ",") != strings.Join(tt.want.Keys, ",") {
					t.Fatalf("LoadCurveClients = %+v, %v; want %+v", cc, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadCurveClients = %+v, %v; want an error with %q", cc, err, tt.wantErr)
			}
		})
	}
}

func TestValidateCurve(t *testing.T) {
	curveCluster := Cluster{Addresses: []Address{
		{IP: "127.0.0.1", Port: 5550, InternalPort: 5560, CurvePublic: testKeyA},
		{IP: "127.0.0.1", Port: 5551, InternalPort: 5561, CurvePublic: testKeyB},
	}}
	tests := []struct {
		name    string
		adjust  func(n *Node)
		wantErr string
	}{
		{"curve on", func(n *Node) { n.Cluster, n.CurveSecret = curveCluster, testSecretA }, ""},
		{"curve on, any client", func(n *Node) {
			n.Cluster, n.CurveSecret, n.CurveClients = curveCluster, testSecretA, CurveClients{Any: true}
		}, ""},
		{"secret without keys", func(n *Node) { n.CurveSecret = testSecretA }, "curve_secret_file is set, but the cluster file carries no \"curve_public\" keys"},
		{"keys without secret", func(n *Node) { n.Cluster = curveCluster }, "curve_secret_file is not set"},
		{"clients without secret", func(n *Node) { n.CurveClients = CurveClients{Any: true} }, "curve_clients_file is set, but CURVE is off"},
		{"bad secret", func(n *Node) { n.Cluster, n.CurveSecret = curveCluster, "x" }, "curve_secret_file holds a key that is 1 characters long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := Default()
			tt.adjust(&n)
			err := n.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--curve-") {
				t.Fatalf("Validate = %v, want an error with %q naming its flag", err, tt.wantErr)
			}
		})
	}
}
