//go:build !failpoints

package broker

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestFailpointsOffAreNoOps: in a normal build every point may be hit any
// number of times with the env var armed, and the process lives on, says
// nothing and allocates nothing. The hits run in a child process (this test
// binary again), so a hook that did kill would show as the child's death
// rather than end the test run.
func TestFailpointsOffAreNoOps(t *testing.T) {
	const child = "RAFTMQ_TEST_FAILPOINT_CHILD"
	if os.Getenv(child) == "1" {
		var n *node
		for range 3 {
			for p := failpoint(0); p < numFailpoints; p++ {
				n.failpoint(p)
			}
		}
		return
	}
	if failpointsEnabled {
		t.Fatal("failpoints enabled in a build without the failpoints tag")
	}
	var armed []string
	for _, name := range failpointNames {
		armed = append(armed, name+"=1")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFailpointsOffAreNoOps$", "-test.count=1")
	cmd.Env = append(os.Environ(), child+"=1", FailpointsEnv+"="+strings.Join(armed, ","))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hitting every armed point in a normal build: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "failpoint") {
		t.Errorf("the off hook printed something:\n%s", out)
	}
	var n *node
	if got := testing.AllocsPerRun(100, func() { n.failpoint(fpLogAfterPersist) }); got != 0 {
		t.Errorf("the off hook allocates %v times per call", got)
	}
}
