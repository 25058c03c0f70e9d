package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileNamesNoHost: the module proxy and checksum database come from
// the build environment (build arguments), never from the Dockerfile, so
// building behind another proxy needs no edit and the file advertises no
// host.
func TestDockerfileNamesNoHost(t *testing.T) {
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	host := regexp.MustCompile(`(?i)[a-z0-9-]+\.(org|com|net|io|dev)\b|://`)
	for i, line := range strings.Split(string(raw), "\n") {
		if m := host.FindString(line); m != "" {
			t.Errorf("Dockerfile:%d names a host (%q): %s", i+1, m, line)
		}
	}
	for _, arg := range []string{"GOPROXY", "GOSUMDB"} {
		if !regexp.MustCompile(`(?m)^ARG ` + arg + `=$`).Match(raw) {
			t.Errorf("Dockerfile: want an empty 'ARG %s=' (Go's default unless the build passes one)", arg)
		}
	}
}
