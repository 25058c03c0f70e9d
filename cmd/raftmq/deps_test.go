package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryLinksNoTestCode: the shipped binary links no test-only package:
// not the process-level tests (e2e), not the binary builder (testbin, which
// runs `go build`), not the damage helpers, not the standard testing
// package. (Before the suite moved to internal/verify, it linked e2e.)
func TestBinaryLinksNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		ours := strings.HasPrefix(pkg, "github.com/raftmq/raftmq/")
		switch {
		case pkg == "testing", strings.HasPrefix(pkg, "testing/"),
			ours && strings.Contains(pkg, "/e2e"),
			ours && strings.HasSuffix(pkg, "/internal/testbin"),
			ours && strings.HasSuffix(pkg, "/internal/damage"),
			ours && strings.HasSuffix(pkg, "test"):
			t.Errorf("the raftmq binary links test-only package %s", pkg)
		}
	}
}
