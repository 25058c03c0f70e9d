//go:build raftsabotage

package raftlog

// sabotageConcurrentChanges: see sabotage_off.go. Never ship this build.
const sabotageConcurrentChanges = true
