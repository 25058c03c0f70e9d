package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const courseFile = `{
  "addresses": [
    {"ip": "127.0.0.1", "port": 5550, "internal_port": 5560},
    {"ip": "127.0.0.1", "port": 5551, "internal_port": 5561},
    {"ip": "127.0.0.1", "port": 5552, "internal_port": 5562}
  ]
}
`

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadCluster(t *testing.T) {
	three := []Address{
		{IP: "127.0.0.1", Port: 5550, InternalPort: 5560}, {IP: "127.0.0.1", Port: 5551, InternalPort: 5561}, {IP: "127.0.0.1", Port: 5552, InternalPort: 5562},
	}
	tests := []struct {
		name     string
		content  string
		want     Cluster
		wantErrs []string // substrings; nil = success
		is       error
	}{
		{name: "course file", content: courseFile, want: Cluster{Addresses: three}},
		{
			name: "extra keys allowed at every level",
			content: `{"addresses": [{"ip": "10.0.0.1", "port": 1, "internal_port": 2, "name": "a"}],
			           "comment": "from the course", "nested": {"x": [1,2]}}`,
			want: Cluster{Addresses: []Address{{IP: "10.0.0.1", Port: 1, InternalPort: 2}}},
		},
		{
			name:    "explicit ids",
			content: `{"addresses": [{"id": 3, "ip": "10.0.0.1", "port": 1, "internal_port": 2}, {"id": 0, "ip": "10.0.0.2", "port": 1, "internal_port": 2}], "cluster_id": "c"}`,
			want: Cluster{Addresses: []Address{{ID: 3, IP: "10.0.0.1", Port: 1, InternalPort: 2}, {ID: 0, IP: "10.0.0.2", Port: 1, InternalPort: 2}},
				ClusterID: "c", ExplicitIDs: true},
		},
		{
			name:     "ids on some entries only",
			content:  `{"addresses": [{"id": 3, "ip": "10.0.0.1", "port": 1, "internal_port": 2}, {"ip": "10.0.0.2", "port": 1, "internal_port": 2}]}`,
			wantErrs: []string{"addresses[1].id", "give every node an \"id\", or none"}, is: ErrInvalid,
		},
		{
			name:     "duplicate and negative ids",
			content:  `{"addresses": [{"id": 3, "ip": "10.0.0.1", "port": 1, "internal_port": 2}, {"id": 3, "ip": "10.0.0.2", "port": 1, "internal_port": 2}, {"id": -1, "ip": "10.0.0.3", "port": 1, "internal_port": 2}]}`,
			wantErrs: []string{"addresses[1].id", "already the id of addresses[0]", "addresses[2].id", "must be in 0.."}, is: ErrInvalid,
		},
		{
			name:     "id not an integer",
			content:  `{"addresses": [{"id": "a", "ip": "10.0.0.1", "port": 1, "internal_port": 2}]}`,
			wantErrs: []string{"addresses[0].id", "must be an integer node id"}, is: ErrInvalid,
		},
		{
			name:    "explicit cluster id",
			content: `{"addresses": [{"ip": "10.0.0.1", "port": 1, "internal_port": 2}], "cluster_id": "prod-1"}`,
			want:    Cluster{Addresses: []Address{{IP: "10.0.0.1", Port: 1, InternalPort: 2}}, ClusterID: "prod-1"},
		},
		{
			name:     "same ports on different ips",
			content:  `{"addresses": [{"ip": "10.0.0.1", "port": 1, "internal_port": 2}, {"ip": "10.0.0.2", "port": 1, "internal_port": 2}]}`,
			want:     Cluster{Addresses: []Address{{IP: "10.0.0.1", Port: 1, InternalPort: 2}, {IP: "10.0.0.2", Port: 1, InternalPort: 2}}},
			wantErrs: nil,
		},
		{
			name:     "bad JSON names line and column",
			content:  "{\n  \"addresses\": [\n    {\"ip\": \"127.0.0.1\", \"port\": 5550,, \"internal_port\": 5560}\n  ]\n}",
			wantErrs: []string{"invalid JSON at line 3, column 38"},
			is:       ErrClusterFile,
		},
		{
			name:     "truncated JSON",
			content:  `{"addresses": [`,
			wantErrs: []string{"invalid JSON at line 1"},
			is:       ErrClusterFile,
		},
		{name: "not an object", content: `[1]`, wantErrs: []string{"line 1, column 1", "want a JSON object"}, is: ErrClusterFile},
		{name: "null", content: `null`, wantErrs: []string{"want a JSON object"}, is: ErrClusterFile},
		{name: "addresses missing", content: `{"nodes": []}`, wantErrs: []string{"config: addresses is missing"}, is: ErrInvalid},
		{name: "addresses empty", content: `{"addresses": []}`, wantErrs: []string{"config: addresses is empty"}, is: ErrInvalid},
		{name: "addresses not a list", content: `{"addresses": {"ip": "1.2.3.4"}}`, wantErrs: []string{"config: addresses must be a list"}, is: ErrInvalid},
		{name: "address not an object", content: `{"addresses": ["127.0.0.1:5550"]}`, wantErrs: []string{`config: addresses[0] must be an object`, `"127.0.0.1:5550"`}, is: ErrInvalid},
		{
			name:     "duplicate client port",
			content:  `{"addresses": [{"ip": "127.0.0.1", "port": 5550, "internal_port": 5560}, {"ip": "127.0.0.1", "port": 5550, "internal_port": 5561}]}`,
			wantErrs: []string{"config: addresses[1].port (5550) is already used by addresses[0].port on 127.0.0.1"},
			is:       ErrInvalid,
		},
		{
			name:     "client port reused as internal port",
			content:  `{"addresses": [{"ip": "127.0.0.1", "port": 5550, "internal_port": 5560}, {"ip": "127.0.0.1", "port": 5551, "internal_port": 5550}]}`,
			wantErrs: []string{"config: addresses[1].internal_port (5550) is already used by addresses[0].port"},
			is:       ErrInvalid,
		},
		{
			name:     "non-numeric port",
			content:  `{"addresses": [{"ip": "127.0.0.1", "port": 5550, "internal_port": 5560}, {"ip": "127.0.0.1", "port": "abc", "internal_port": 5561}]}`,
			wantErrs: []string{`config: addresses[1].port must be an integer port number, got "abc"`},
			is:       ErrInvalid,
		},
		{
			name:     "fractional port and missing internal port reported together",
			content:  `{"addresses": [{"ip": "127.0.0.1", "port": 5550.5}]}`,
			wantErrs: []string{"addresses[0].port must be an integer port number, got 5550.5", "config: addresses[0].internal_port is missing"},
			is:       ErrInvalid,
		},
		{
			name:     "ip not a string",
			content:  `{"addresses": [{"ip": 127, "port": 1, "internal_port": 2}]}`,
			wantErrs: []string{`config: addresses[0].ip must be a string`},
			is:       ErrInvalid,
		},
		{
			name:     "hostname is not an ip",
			content:  `{"addresses": [{"ip": "node1", "port": 1, "internal_port": 2}]}`,
			wantErrs: []string{`config: addresses[0].ip ("node1") is not an IP address`},
			is:       ErrInvalid,
		},
		{
			name:     "cluster id not a string",
			content:  `{"addresses": [{"ip": "127.0.0.1", "port": 1, "internal_port": 2}], "cluster_id": 7}`,
			wantErrs: []string{"config: cluster_id must be a string, got 7"},
			is:       ErrInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			got, err := LoadCluster(path)
			if tt.wantErrs == nil {
				if err != nil {
					t.Fatalf("LoadCluster() = %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("LoadCluster() = %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadCluster() = %+v, nil; want error", got)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false; err = %v", tt.is, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file %s", msg, path)
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(msg, want) {
					t.Errorf("error =\n%s\nwant it to contain %q", msg, want)
				}
			}
		})
	}
}

func TestLoadClusterMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.json")
	_, err := LoadCluster(path)
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrClusterFile) {
		t.Fatalf("LoadCluster(missing) = %v, want ErrClusterFile and fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestLoadClusterTooLarge(t *testing.T) {
	path := writeFile(t, `{"addresses": [], "pad": "`+strings.Repeat("x", MaxClusterFileBytes)+`"}`)
	_, err := LoadCluster(path)
	if !errors.Is(err, ErrClusterFile) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("LoadCluster(huge) = %v, want ErrClusterFile naming the size limit", err)
	}
}

func TestClusterID(t *testing.T) {
	a := Address{IP: "127.0.0.1", Port: 5550, InternalPort: 5560}
	b := Address{IP: "127.0.0.1", Port: 5551, InternalPort: 5561}
	ab := Cluster{Addresses: []Address{a, b}}
	tests := []struct {
		name      string
		c1, c2    Cluster
		wantEqual bool
	}{
		{"same addresses same id", ab, Cluster{Addresses: []Address{a, b}}, true},
		{"order matters", ab, Cluster{Addresses: []Address{b, a}}, false},
		{"port matters", ab, Cluster{Addresses: []Address{a, {IP: "127.0.0.1", Port: 5551, InternalPort: 5562}}}, false},
		{"subset differs", ab, Cluster{Addresses: []Address{a}}, false},
		{"ipv6 spelling is canonical", Cluster{Addresses: []Address{{IP: "::1", Port: 1, InternalPort: 2}}}, Cluster{Addresses: []Address{{IP: "0:0:0:0:0:0:0:1", Port: 1, InternalPort: 2}}}, true},
		{"curve keys do not change the id", ab, Cluster{Addresses: []Address{
			{IP: a.IP, Port: a.Port, InternalPort: a.InternalPort, CurvePublic: testKeyA},
			{IP: b.IP, Port: b.Port, InternalPort: b.InternalPort, CurvePublic: testKeyB}}}, true},
		{"explicit id wins", Cluster{Addresses: []Address{a}, ClusterID: "x"}, Cluster{Addresses: []Address{b}, ClusterID: "x"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id1, id2 := tt.c1.ID(), tt.c2.ID()
			if (id1 == id2) != tt.wantEqual {
				t.Errorf("ID() = %q and %q, want equal=%v", id1, id2, tt.wantEqual)
			}
		})
	}
	// Stable across releases (golden value from `printf "127.0.0.1|5550|5560\n" | sha256sum`): a data directory records it, so changing the
	// derivation would make every existing node refuse its own data.
	if got, want := Default().Cluster.ID(), "88cb7afe1340daaa"; got != want {
		t.Errorf("Default cluster ID() = %q, want %q (the derivation must never change)", got, want)
	}
	if got := ab.ID(); len(got) != 16 || strings.Trim(got, "0123456789abcdef") != "" {
		t.Errorf("ID() = %q, want 16 hex chars", got)
	}
}
