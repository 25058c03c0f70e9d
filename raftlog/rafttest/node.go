package rafttest

import (
	"fmt"
	"math/rand"

	"github.com/raftmq/raftmq/raftlog"
)

// node is one simulated server: a core over a MemoryStorage that survives
// crashes (the "disk") and a state machine reduced to its applied index,
// since the Checker keeps the applied contents.
type node struct {
	id      uint64
	storage *raftlog.MemoryStorage // survives crashes
	core    *raftlog.Core          // nil while down
	// incarnation counts restarts; messages from an earlier incarnation are
	// still delivered, but its snapshot reports are not.
	incarnation int
	applied     uint64 // last applied index; survives a crash only if the state machine is kept
	// recovering is the persisted recovering flag (raft.db's, in the
	// broker): set when the node's data is wiped, cleared when the core
	// reports it caught up.
	recovering  bool
	forgetVotes bool // sabotage: persist HardState without Vote
	loseTail    bool // sabotage: a crash loses the last persisted entries
	wipeAsVoter bool // sabotage: a wiped node restarts as an ordinary voter
}

func (n *node) up() bool { return n.core != nil }

// start creates the core from the persisted state.
func (n *node) start(cfg raftlog.Config) error {
	cfg.ID = n.id
	cfg.Storage = n.storage
	cfg.Applied = n.applied
	cfg.Recovering = n.recovering
	c, err := raftlog.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: node %d New: %w", ErrCore, n.id, err)
	}
	n.core = c
	n.incarnation++
	return nil
}

// crash drops the core: whatever it had not persisted through a handled
// Ready is gone. With keepStateMachine false the state machine restarts from
// the storage's snapshot, as a broker without its state.db would.
func (n *node) crash(keepStateMachine bool) {
	n.core = nil
	if n.loseTail {
		n.dropTail(3)
	}
	if !keepStateMachine {
		snap, err := n.storage.Snapshot()
		if err != nil {
			panic(fmt.Sprintf("rafttest: MemoryStorage.Snapshot: %v", err))
		}
		n.applied = snap.Index
	}
}

// wipe drops the core and everything the node stored, as an operator who
// wiped its data directory would, except the membership the broker
// bootstraps with. The node restarts in recovering mode (`serve --recover`)
// unless the wipeAsVoter sabotage is on.
func (n *node) wipe(voters []uint64) {
	n.core = nil
	n.storage = raftlog.NewMemoryStorage()
	n.storage.SetConfState(raftlog.ConfState{Voters: voters})
	n.applied = 0
	n.recovering = !n.wipeAsVoter
}

// dropTail rebuilds the storage without its last k entries (never below
// the snapshot): a disk that lied about fsync. Sabotage for harness tests.
func (n *node) dropTail(k uint64) {
	hs, conf, err := n.storage.InitialState()
	if err != nil {
		panic(fmt.Sprintf("rafttest: InitialState: %v", err))
	}
	snap, _ := n.storage.Snapshot()
	first, _ := n.storage.FirstIndex()
	last, _ := n.storage.LastIndex()
	keep := max(first-1, last-min(k, last))
	ents, err := n.storage.Entries(first, keep+1, 1<<62)
	if err != nil && keep >= first {
		panic(fmt.Sprintf("rafttest: Entries(%d, %d): %v", first, keep+1, err))
	}
	ms := raftlog.NewMemoryStorage()
	if !snap.IsEmpty() {
		if err := ms.ApplySnapshot(snap); err != nil {
			panic(fmt.Sprintf("rafttest: ApplySnapshot: %v", err))
		}
	}
	if len(conf.Voters) > 0 {
		ms.SetConfState(conf)
	}
	hs.Commit = min(hs.Commit, keep)
	n.applied = min(n.applied, keep)
	if err := ms.SetHardState(hs); err != nil {
		panic(fmt.Sprintf("rafttest: SetHardState: %v", err))
	}
	if err := ms.Append(ents); err != nil {
		panic(fmt.Sprintf("rafttest: Append: %v", err))
	}
	n.storage = ms
}

// readyHooks lets the driver report what a Ready did.
type readyHooks struct {
	send      func(m raftlog.Message) error
	installed func(meta raftlog.SnapshotMeta)
	applied   func(e raftlog.Entry)
	readState func(rs raftlog.ReadState) error
}

// handleReady processes one Ready in the documented order: persist
// HardState, the snapshot and Entries, send messages, apply committed
// entries, Advance. The snapshot goes to storage before the entries: a
// Ready may carry a snapshot and entries that follow it, and appending them
// first would leave a gap.
func (n *node) handleReady(chk *Checker, h readyHooks) error {
	rd := n.core.Ready()
	if !rd.HardState.IsEmpty() {
		hs := rd.HardState
		if n.forgetVotes {
			hs.Vote = raftlog.None // the disk drops it; the checker is told the truth
		}
		if err := n.storage.SetHardState(hs); err != nil {
			return fmt.Errorf("%w: node %d SetHardState: %w", ErrCore, n.id, err)
		}
		if err := chk.PersistHardState(n.id, rd.HardState); err != nil {
			return err
		}
	}
	if !rd.Snapshot.IsEmpty() {
		if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("%w: node %d ApplySnapshot: %w", ErrCore, n.id, err)
		}
		if err := chk.InstallSnapshot(n.id, rd.Snapshot); err != nil {
			return err
		}
		n.applied = max(n.applied, rd.Snapshot.Index)
		h.installed(rd.Snapshot)
	}
	if len(rd.Entries) > 0 {
		if err := n.storage.Append(rd.Entries); err != nil {
			return fmt.Errorf("%w: node %d Append: %w", ErrCore, n.id, err)
		}
		if err := chk.PersistEntries(n.id, rd.Entries); err != nil {
			return err
		}
	}
	for _, m := range rd.Messages {
		if err := h.send(m); err != nil {
			return err
		}
	}
	term := n.core.Status().Term
	for _, e := range rd.CommittedEntries {
		if err := chk.Apply(n.id, term, e); err != nil {
			return err
		}
		n.applied = e.Index
		h.applied(e)
	}
	for _, rs := range rd.ReadStates {
		if err := h.readState(rs); err != nil {
			return err
		}
	}
	if rd.SoftState != nil && !rd.SoftState.Recovering {
		n.recovering = false // the broker clears its persisted flag here
	}
	n.core.Advance(rd)
	return nil
}

// nodeRand derives a node's private randomness from the simulation's.
func nodeRand(rng *rand.Rand) *rand.Rand { return rand.New(rand.NewSource(rng.Int63())) }
