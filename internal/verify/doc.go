// Package chaos is raftmq's fault-injection suite: it runs real broker
// processes (3 or 5), drives a seeded workload of producers and consumers
// against them while a seeded nemesis kills, pauses and partitions nodes,
// heals every fault, drains the queues, and checks the history:
//
//   - per-topic linearizability against a FIFO-queue model (porcupine),
//   - a total-queue check: no acknowledged message lost, none delivered
//     twice, none delivered that was never sent,
//   - every node converged on the same log and applied state,
//   - no node cut off in a minority acknowledged a new request,
//   - a retried request (same client_id/seq) got the first answer again,
//   - leased delivery (lease.go, leasecheck.go): every acknowledged put to a
//     lease topic acked exactly once or dead-lettered, delivery counts never
//     repeated, no provably stale receipt accepted.
//
// Network faults use one network namespace per broker joined by a bridge
// that lives in a namespace of its own (so the host's firewall never sees
// the traffic); partitions are iptables DROP rules inside the namespaces.
// Without root or without iproute2/iptables those fault families are
// skipped with a message and the brokers run on 127.0.0.1.
//
// A run is driven by one seed: the fault schedule, the workload's choices
// and the client ids derive from it, so `raftmq verify --seed S` replays a
// failing schedule (timing, and so the exact interleaving, still varies).
package verify
