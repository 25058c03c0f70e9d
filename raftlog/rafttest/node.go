package rafttest

import (
	"fmt"
	"math/rand"
	"slices"

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
	// joining: the node started with no membership (a spare of a
	// membership run); it knows one only from its log and snapshots.
	joining bool
	// confs are the memberships of the change entries applied, oldest
	// first (this incarnation of the state machine), for snapshots.
	confs []appliedConf
	// boot is the bootstrap membership, before any change entry.
	boot raftlog.ConfState
	// pending is a Ready whose early messages are sent and whose write is
	// not done; a crash loses it.
	pending *raftlog.Ready
}

func (n *node) up() bool { return n.core != nil }

// start creates the core from the persisted state.
func (n *node) start(cfg raftlog.Config) error {
	cfg.ID = n.id
	cfg.Storage = n.storage
	cfg.Applied = n.applied
	cfg.Recovering = n.recovering
	if n.joining {
		cfg.Peers = nil
	}
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
	n.pending = nil
	if n.loseTail {
		n.dropTail(3)
	}
	if !keepStateMachine {
		snap, err := n.storage.Snapshot()
		if err != nil {
			panic(fmt.Sprintf("rafttest: MemoryStorage.Snapshot: %v", err))
		}
		n.applied = snap.Index
		n.confs = slices.DeleteFunc(n.confs, func(c appliedConf) bool { return c.index > n.applied })
	}
}

// wipe drops the core and everything the node stored, as an operator who
// wiped its data directory would, except the membership the broker
// bootstraps with. The node restarts in recovering mode (`serve --recover`)
// unless the wipeAsVoter sabotage is on.
func (n *node) wipe(voters []uint64) {
	n.core = nil
	n.pending = nil
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

// beginReady takes the next Ready and sends what may leave before its
// write (a leader's appends and heartbeats). The rest waits in n.pending
// for finishReady; meanwhile the node may go on stepping messages, as an
// asynchronous write would let it, or crash, losing the whole Ready except
// what it sent.
func (n *node) beginReady(h readyHooks) error {
	rd := n.core.Ready()
	n.pending = &rd
	for _, m := range rd.SendBeforePersist() {
		if err := h.send(m); err != nil {
			return err
		}
	}
	return nil
}

// finishReady processes the pending Ready in the documented order: persist
// HardState, the snapshot and Entries, send the other messages, apply
// committed entries, Advance. The snapshot goes to storage before the
// entries: a Ready may carry a snapshot and entries that follow it, and
// appending them first would leave a gap.
func (n *node) finishReady(chk *Checker, h readyHooks) error {
	rd := *n.pending
	n.pending = nil
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
	for _, m := range rd.SendAfterPersist() {
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
		if e.Type == raftlog.EntryConfChange {
			cc, err := raftlog.UnmarshalConfChange(e.Data)
			if err != nil {
				return fmt.Errorf("%w: node %d applies change %d: %w", ErrCore, n.id, e.Index, err)
			}
			// The broker records the membership as it applies.
			n.storage.SetConfState(cc.After)
			n.confs = append(n.confs, appliedConf{e.Index, cc.After})
		}
		h.applied(e)
	}
	for _, rs := range rd.ReadStates {
		if err := h.readState(rs); err != nil {
			return err
		}
	}
	if rd.SoftState != nil {
		// The broker sets or clears its persisted flag here (a node wiped
		// as a voter models a broker that never keeps it).
		n.recovering = rd.SoftState.Recovering && !n.wipeAsVoter
	}
	n.core.Advance(rd)
	return nil
}

type appliedConf struct {
	index uint64
	conf  raftlog.ConfState
}

// confAt is the membership as of applied index i: that of the newest
// change applied at or below i, else the storage's snapshot's, else the
// bootstrap one.
func (n *node) confAt(i uint64) raftlog.ConfState {
	for k := len(n.confs) - 1; k >= 0; k-- {
		if n.confs[k].index <= i {
			return n.confs[k].conf
		}
	}
	if snap, err := n.storage.Snapshot(); err == nil && !snap.Conf.IsEmpty() {
		return snap.Conf
	}
	return n.boot
}

// nodeRand derives a node's private randomness from the simulation's.
func nodeRand(rng *rand.Rand) *rand.Rand { return rand.New(rand.NewSource(rng.Int63())) }
