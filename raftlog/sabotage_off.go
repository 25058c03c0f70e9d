//go:build !raftsabotage

package raftlog

// sabotageConcurrentChanges is false in every real build. The
// raftsabotage build tag turns it on to show that the randomized harness
// (rafttest.TestHarnessCatchesConcurrentChanges) catches a leader that
// accepts a change while another is uncommitted.
const sabotageConcurrentChanges = false
