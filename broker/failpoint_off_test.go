//go:build !failpoints

package broker

import (
	"os"
	"testing"
)

// TestFailpointsOffAreNoOps: in a normal build every point may be hit any
// number of times, with the env var armed, and the process lives on; the
// hook touches nothing (it runs on a nil node).
func TestFailpointsOffAreNoOps(t *testing.T) {
	if failpointsEnabled {
		t.Fatal("failpoints enabled in a build without the failpoints tag")
	}
	t.Setenv(FailpointsEnv, "log-before-persist=1,log-after-persist=1,state-before-commit=1,state-after-commit=1,before-reply=1")
	var n *node
	for range 3 {
		for p := failpoint(0); p < numFailpoints; p++ {
			n.failpoint(p)
		}
	}
	if got := testing.AllocsPerRun(100, func() { n.failpoint(fpLogAfterPersist) }); got != 0 {
		t.Errorf("the off hook allocates %v times per call", got)
	}
	if os.Getpid() == 0 {
		t.Fatal("unreachable: the process is alive")
	}
}
