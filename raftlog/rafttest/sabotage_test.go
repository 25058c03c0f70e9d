//go:build raftsabotage

package rafttest

import (
	"errors"
	"testing"
)

// TestHarnessCatchesConcurrentChanges runs the membership runs against a
// core built with the raftsabotage tag, whose leaders accept a change
// while another is uncommitted (two single-server changes in flight make
// two majorities that need not overlap), and expects a safety violation:
//
//	go test -tags raftsabotage -run TestHarnessCatchesConcurrentChanges ./raftlog/rafttest
func TestHarnessCatchesConcurrentChanges(t *testing.T) {
	const maxSeeds = 3000
	for seed := range int64(maxSeeds) {
		s := New(Options{Seed: seed, Nodes: 3, Steps: 3000, Membership: true})
		err := s.Run()
		if err == nil || errors.Is(err, ErrLiveness) || errors.Is(err, ErrCore) {
			continue
		}
		if !errors.Is(err, ErrElectionSafety) && !errors.Is(err, ErrLeaderCompleteness) &&
			!errors.Is(err, ErrStateMachineSafety) && !errors.Is(err, ErrLogMatching) && !errors.Is(err, ErrCommitNotDurable) {
			t.Fatalf("seed %d: want a safety violation, got %v\n%s", seed, err, s.Trace())
		}
		t.Logf("seed %d caught it: %v", seed, err)
		return
	}
	t.Fatalf("%d seeds of leaders that run two changes at once found no violation", maxSeeds)
}
