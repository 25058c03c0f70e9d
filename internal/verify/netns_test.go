package verify

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
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

// TestRemoveStaleNetworks: a namespace left by a run whose process is gone
// is deleted, and the process still running inside it is killed.
func TestRemoveStaleNetworks(t *testing.T) {
	if nw, err := NewNetwork(1); errors.Is(err, ErrNoNetns) {
		t.Skipf("network namespaces: %v", err)
	} else if err != nil {
		t.Fatal(err)
	} else {
		nw.Close()
	}
	deadPID := 0
	for pid := 4194000; pid < 4194300; pid++ {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			deadPID = pid
			break
		}
	}
	if deadPID == 0 {
		t.Skip("no unused pid found")
	}
	name := fmt.Sprintf("%s%xz-n0", netPrefix, deadPID)
	if err := run("ip", "netns", "add", name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = run("ip", "netns", "del", name) })
	sleeper := exec.Command("ip", "netns", "exec", name, "sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleeper.Wait() }()
	removeStaleNetworks()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = sleeper.Process.Kill()
		t.Fatalf("the process inside stale namespace %s was not killed", name)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), name) {
		t.Fatalf("stale namespace %s still listed:\n%s", name, out)
	}
}
