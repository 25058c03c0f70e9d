// Package rafttest is a randomized simulation harness for the raftlog core,
// in the style of hashicorp/raft's fuzzy tests and etcd's robustness tests.
//
// A Sim runs N cores over an in-memory network driven by one seeded
// *rand.Rand: it ticks nodes, delivers, drops, duplicates, delays and
// reorders messages, partitions and heals the network, crash-restarts nodes
// (a restarted node keeps only what it persisted) and proposes commands to
// whoever leads. It uses only raftlog's public API, and every message crosses
// the network through MarshalMessage/UnmarshalMessage.
//
// A Checker watches the run and reports a broken Raft safety property
// (election safety, log matching, leader completeness, state machine safety,
// monotonic commit and term) after every step. Sim.Run also checks liveness:
// once the network is healed and every node is up, a leader is elected and a
// proposal commits within a bounded number of ticks.
//
// Everything is deterministic for a seed: a failure names its seed and the
// last events, and -rafttest.seed replays it.
package rafttest
