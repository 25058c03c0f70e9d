package config

import (
	"slices"
	"testing"
)

// Options that no longer do anything are named when set, so that the
// broker can warn; defaults are not named.
func TestIgnored(t *testing.T) {
	n := Default()
	if got := n.Ignored(); len(got) != 0 {
		t.Fatalf("defaults named as ignored: %v", got)
	}
	n.SnapshotLogPercent, n.SnapshotsKept = 250, 3
	if got, want := n.Ignored(), []string{"snapshot_log_percent", "snapshots_kept"}; !slices.Equal(got, want) {
		t.Fatalf("Ignored() = %v, want %v", got, want)
	}
}
