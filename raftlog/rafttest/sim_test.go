package rafttest

import (
	"errors"
	"flag"
	"fmt"
	"testing"
)

var (
	flagSeeds = flag.Int("rafttest.seeds", 100, "seeds per cluster size for TestRandomized")
	flagSeed  = flag.Int64("rafttest.seed", -1, "run only this seed (replay a failure)")
	flagSteps = flag.Int("rafttest.steps", 0, "random events per run (0 = the default for the cluster size)")
)

// TestRandomized runs many seeded simulations of 1- to 7-node clusters with
// message loss, duplication, reordering, partitions, crash-restarts,
// compaction and leadership transfers, and, on every odd seed, wipes of one
// node's data at a time (restarted in recovering mode, as `raftmq serve
// --recover` does), checking Raft's safety properties after every step and
// liveness after healing.
func TestRandomized(t *testing.T) {
	sizes := []struct {
		nodes, steps int
	}{
		{nodes: 1, steps: 1000},
		{nodes: 3, steps: 4000},
		{nodes: 5, steps: 3000},
		{nodes: 7, steps: 2000},
	}
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("nodes=%d", sz.nodes), func(t *testing.T) {
			t.Parallel()
			steps := sz.steps
			if *flagSteps > 0 {
				steps = *flagSteps
			}
			var seeds []int64
			if *flagSeed >= 0 {
				seeds = []int64{*flagSeed}
			} else {
				for i := range *flagSeeds {
					seeds = append(seeds, int64(i))
				}
			}
			var total Stats
			for _, seed := range seeds {
				s := New(Options{Seed: seed, Nodes: sz.nodes, Steps: steps, Wipes: seed%2 == 1})
				if err := s.Run(); err != nil {
					t.Fatalf("%v\n%s\nlast events:\n%s\nreplay: go test ./raftlog/rafttest -run 'TestRandomized/nodes=%d' -rafttest.seed %d -v",
						err, s.Describe(), s.Trace(), sz.nodes, seed)
				}
				st := s.Stats()
				if testing.Verbose() && *flagSeed >= 0 {
					t.Logf("%s\n%+v", s.Describe(), st)
				}
				add(&total, st)
			}
			t.Logf("%d seeds x %d steps: %+v", len(seeds), steps, total)
			// A run that never elects or commits checks nothing.
			if total.Terms == 0 || total.Committed == 0 || (sz.nodes > 1 && (total.Delivered == 0 || total.MidReadyCrashes == 0)) ||
				(sz.nodes >= 3 && (total.Wipes == 0 || total.Demotions == 0)) {
				t.Fatalf("the runs exercised nothing: %+v", total)
			}
		})
	}
}

func add(t *Stats, s Stats) {
	t.Steps += s.Steps
	t.Ticks += s.Ticks
	t.Delivered += s.Delivered
	t.Validated += s.Validated
	t.Lost += s.Lost
	t.Proposals += s.Proposals
	t.Accepted += s.Accepted
	t.Reads += s.Reads
	t.ReadStates += s.ReadStates
	t.Crashes += s.Crashes
	t.MidReadyCrashes += s.MidReadyCrashes
	t.PendingWrites += s.PendingWrites
	t.Partitions += s.Partitions
	t.Compactions += s.Compactions
	t.Snapshots += s.Snapshots
	t.Transfers += s.Transfers
	t.Campaigns += s.Campaigns
	t.Committed += s.Committed
	t.Terms += s.Terms
	t.Wipes += s.Wipes
	t.Demotions += s.Demotions
}

// TestDeterministic checks that a seed replays exactly: same trace, same
// counters.
func TestDeterministic(t *testing.T) {
	run := func() (string, Stats, error) {
		s := New(Options{Seed: 7, Nodes: 3, Steps: 500})
		err := s.Run()
		return s.Trace(), s.Stats(), err
	}
	tr1, st1, err1 := run()
	tr2, st2, err2 := run()
	if fmt.Sprint(err1) != fmt.Sprint(err2) || tr1 != tr2 || st1 != st2 {
		t.Fatalf("seed 7 did not replay:\n%v\n%+v\n%s\nvs\n%v\n%+v\n%s", err1, st1, tr1, err2, st2, tr2)
	}
}

// TestHarnessCatchesForgottenVotes runs a deliberately broken driver that
// does not persist its vote, and expects the harness to report two leaders
// in one term within a bounded number of seeds.
func TestHarnessCatchesForgottenVotes(t *testing.T) {
	const maxSeeds = 300
	for seed := range int64(maxSeeds) {
		s := New(Options{Seed: seed, Nodes: 3, Steps: 2000, forgetVotes: true})
		err := s.Run()
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrElectionSafety) {
			t.Fatalf("seed %d: want ErrElectionSafety, got %v\n%s", seed, err, s.Trace())
		}
		t.Logf("seed %d caught it: %v", seed, err)
		return
	}
	t.Fatalf("%d seeds of a node that forgets its votes found no violation", maxSeeds)
}

// TestHarnessCatchesLostEntries runs nodes whose disk loses the last
// persisted entries on a crash, and expects a log safety violation.
func TestHarnessCatchesLostEntries(t *testing.T) {
	const maxSeeds = 300
	for seed := range int64(maxSeeds) {
		s := New(Options{Seed: seed, Nodes: 3, Steps: 2000, loseTail: true})
		err := s.Run()
		if err == nil || errors.Is(err, ErrCore) {
			continue // the core may rightly panic on a log shorter than its commit
		}
		if !errors.Is(err, ErrLeaderCompleteness) && !errors.Is(err, ErrStateMachineSafety) && !errors.Is(err, ErrLogMatching) {
			t.Fatalf("seed %d: want a log safety violation, got %v\n%s", seed, err, s.Trace())
		}
		t.Logf("seed %d caught it: %v", seed, err)
		return
	}
	t.Fatalf("%d seeds of nodes that lose persisted entries found no violation", maxSeeds)
}

// TestHarnessCatchesWipedVoters: a node whose data is wiped and that comes
// back as an ordinary voter (no recovering mode) can vote twice in a term or
// help elect a leader without committed entries; the harness must see it.
func TestHarnessCatchesWipedVoters(t *testing.T) {
	const maxSeeds = 300
	for seed := range int64(maxSeeds) {
		s := New(Options{Seed: seed, Nodes: 3, Steps: 3000, Wipes: true, wipeAsVoter: true})
		err := s.Run()
		if err == nil || errors.Is(err, ErrCore) {
			continue // the core may rightly panic on a log shorter than its commit
		}
		if !errors.Is(err, ErrElectionSafety) && !errors.Is(err, ErrLeaderCompleteness) &&
			!errors.Is(err, ErrStateMachineSafety) && !errors.Is(err, ErrLogMatching) {
			t.Fatalf("seed %d: want a safety violation, got %v\n%s", seed, err, s.Trace())
		}
		t.Logf("seed %d caught it: %v", seed, err)
		return
	}
	t.Fatalf("%d seeds of wiped nodes rejoining as voters found no violation", maxSeeds)
}

// TestValidatorAcceptsRealTraffic: every message correct nodes send, through
// elections, crashes, snapshots, transfers, reads and lagging followers,
// passes the validator the broker applies to peer frames (Sim.deliver checks
// each one). A stricter rule, such as a MsgApp's commit not beyond its last
// entry, fails here.
func TestValidatorAcceptsRealTraffic(t *testing.T) {
	var total Stats
	for seed := range int64(40) {
		s := New(Options{Seed: seed, Nodes: 3, Steps: 3000})
		if err := s.Run(); err != nil {
			t.Fatalf("%v\n%s\nlast events:\n%s", err, s.Describe(), s.Trace())
		}
		add(&total, s.Stats())
	}
	t.Logf("%+v", total)
	if total.Validated == 0 || total.Snapshots == 0 || total.Transfers == 0 {
		t.Fatalf("the runs exercised too little: %+v", total)
	}
}

// TestRandomizedMembership mixes membership changes into the randomized
// runs: spare nodes join empty and are added as learners, promoted,
// removed, while crashes, partitions, compaction and snapshots go on. The
// checks are the same (election safety, log matching, leader
// completeness, state machine safety, liveness after healing), over
// configurations that change under them.
func TestRandomizedMembership(t *testing.T) {
	seeds := *flagSeeds
	if *flagSeed >= 0 {
		seeds = 1
	}
	var total Stats
	for i := range seeds {
		seed := int64(i)
		if *flagSeed >= 0 {
			seed = *flagSeed
		}
		nodes := []int{3, 3, 5}[seed%3]
		s := New(Options{Seed: seed, Nodes: nodes, Steps: 3000, Membership: true})
		if err := s.Run(); err != nil {
			t.Fatalf("%v\n%s\nlast events:\n%s\nreplay: go test ./raftlog/rafttest -run TestRandomizedMembership -rafttest.seed %d -v",
				err, s.Describe(), s.Trace(), seed)
		}
		st := s.Stats()
		add(&total, st)
		total.ConfChanges += st.ConfChanges
	}
	t.Logf("%d seeds: %+v", seeds, total)
	if total.ConfChanges < seeds || total.Committed == 0 || total.Snapshots == 0 {
		t.Fatalf("the runs exercised too little: %+v", total)
	}
}
