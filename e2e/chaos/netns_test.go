package chaos

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestNetworkRules: cuts and loss turn into the iptables rules they should
// in each node's namespace, and healing removes them. (A broken loss rule
// once made every loss fault a silent no-op.) Skipped where namespaces
// cannot be made.
func TestNetworkRules(t *testing.T) {
	nw, err := NewNetwork(3)
	if errors.Is(err, ErrNoNetns) {
		t.Skipf("network namespaces: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	rules := func(node int) string {
		out, err := exec.Command("ip", "netns", "exec", nw.NodeNS(node), "iptables", "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -S in %s: %v: %s", nw.NodeNS(node), err, out)
		}
		return string(out)
	}
	tests := []struct {
		name  string
		apply func() error
		node  int
		want  []string // substrings of `iptables -S`
		avoid []string
	}{
		{"isolate node 0", func() error { return nw.Cut([][2]int{{0, 1}, {0, 2}}) }, 0,
			[]string{"-A CHAOS_IN -s " + nw.IPs[1] + "/32 -j DROP", "-A CHAOS_OUT -d " + nw.IPs[2] + "/32 -j DROP"}, nil},
		{"node 1 cut only from 0", func() error { return nw.Cut([][2]int{{0, 1}}) }, 1,
			[]string{"-A CHAOS_IN -s " + nw.IPs[0] + "/32 -j DROP"}, []string{nw.IPs[2]}},
		{"loss spares the clients", func() error { return nw.Loss(20) }, 2,
			[]string{"-A CHAOS_IN -s " + nw.HostIP + "/32 -j RETURN", "--mode random --probability 0.2", "-j DROP"}, nil},
		{"heal", nw.Heal, 0, []string{"-N CHAOS_IN"}, []string{"DROP", "statistic"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.apply(); err != nil {
				t.Fatal(err)
			}
			got := rules(tt.node)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("node %d rules lack %q:\n%s", tt.node, w, got)
				}
			}
			for _, a := range tt.avoid {
				if strings.Contains(got, a) {
					t.Errorf("node %d rules contain %q:\n%s", tt.node, a, got)
				}
			}
		})
	}
}
