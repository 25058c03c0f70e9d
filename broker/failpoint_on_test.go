//go:build failpoints

package broker

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"
)

// TestFailpointKillsOnTheArmedHit: an armed point kills on exactly its
// armed hit, after one log line naming it; other points never kill.
func TestFailpointKillsOnTheArmedHit(t *testing.T) {
	savedAt, savedKill := failpointAt, failpointKill
	t.Cleanup(func() {
		failpointAt, failpointKill = savedAt, savedKill
		for p := range failpointHits {
			failpointHits[p].Store(0)
		}
	})
	for p := range failpointHits {
		failpointHits[p].Store(0)
	}
	at, err := parseFailpoints("state-after-commit=3")
	if err != nil {
		t.Fatal(err)
	}
	failpointAt = at
	var kills []uint64
	failpointKill = func() { kills = append(kills, failpointHits[fpStateAfterCommit].Load()) }
	var buf bytes.Buffer
	n := &node{log: zerolog.New(&buf)}
	for range 5 {
		for p := failpoint(0); p < numFailpoints; p++ {
			n.failpoint(p)
		}
	}
	if len(kills) != 1 || kills[0] != 3 {
		t.Fatalf("kills at hits %v, want exactly one at hit 3", kills)
	}
	var line struct {
		Failpoint string `json:"failpoint"`
		Hit       uint64 `json:"hit"`
		Message   string `json:"message"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if line.Failpoint != "state-after-commit" || line.Hit != 3 || line.Message != failpointKillMsg {
		t.Fatalf("log line %+v", line)
	}
}
