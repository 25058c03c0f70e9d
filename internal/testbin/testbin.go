// Package testbin builds the raftmq binary for the process-level tests. It
// runs `go build`, so only tests import it: the shipped binary runs itself
// (os.Executable) and links none of this (cmd/raftmq's TestBinaryLinksNoTestCode).
package testbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Build compiles ./cmd/raftmq into dir and returns the binary's path.
// With race set it builds with the race detector; tags are build tags (e.g.
// "failpoints"), and a tagged binary gets its own name so both fit in dir.
func Build(dir string, race bool, tags ...string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	name := "raftmq"
	if len(tags) > 0 {
		name += "-" + strings.Join(tags, "-")
	}
	bin := filepath.Join(dir, name)
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, "./cmd/raftmq")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testbin: go build: %v\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("testbin: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("testbin: not inside the raftmq module")
	}
	return filepath.Dir(mod), nil
}
