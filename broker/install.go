package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/snapshot"
	"github.com/raftmq/raftmq/storage"
)

// pendingInstall is a snapshot received whole and verified by the receiver
// goroutine, its body already written (fsynced) to path, ready to be
// swapped in as state.db when the core asks for it in Ready.Snapshot.
type pendingInstall struct {
	msg  raftlog.Message // the MsgSnap to step
	meta snapshot.Meta
	path string
}

func installPath(dataDir string, m snapshot.Meta) string {
	return filepath.Join(dataDir, installPrefix+strings.TrimSuffix(m.Name(), ".snap")+installSuffix)
}

// acceptInstall steps a received snapshot's MsgSnap into the core. If the
// core takes it, the next Ready carries it in Ready.Snapshot.
func (n *node) acceptInstall(in pendingInstall) {
	if n.pending != nil && n.pending.path != in.path {
		os.Remove(n.pending.path)
	}
	n.pending = &in
	if err := n.core.Step(in.msg); err != nil {
		n.log.Debug().Err(err).Msg("step received snapshot")
	}
}

// installSnapshot makes the state machine and the log the snapshot s, in
// the crash-safe order: raft.db first (its log is reset to s), then
// state.db is swapped for the snapshot body. A crash between the two leaves
// state.db behind raft.db's base, which New repairs from the snapshot file
// (recoverState). Called before the Ready's entries are persisted.
func (n *node) installSnapshot(s raftlog.SnapshotMeta) error {
	n.cancelSnapshot()
	p := n.pending
	if p == nil || p.meta.Index != s.Index || p.meta.Term != s.Term {
		// The core restores only snapshots acceptInstall stepped, and the
		// newest one stepped is pending.
		return fmt.Errorf("%w: install snapshot %d/%d: its received body is not pending (pending: %+v)", ErrStopped, s.Index, s.Term, p)
	}
	path, meta := p.path, p.meta
	n.pending = nil
	// The snapshot's members record (version 2 files) replaces the one
	// the compacted log would have built, with nothing this node knew
	// forgotten (a removed id stays removed); recorded with the log's new
	// base in one write.
	members := n.members
	if len(meta.Members) > 0 {
		sm, err := storage.DecodeMembers(meta.Members)
		if err != nil {
			return fmt.Errorf("%w: install snapshot %d/%d: %w", ErrStopped, s.Index, s.Term, err)
		}
		members = sm.Merge(n.members)
	}
	if err := n.raft.ApplySnapshotWithMembers(s, members); err != nil {
		return fmt.Errorf("%w: install snapshot in raft.db: %w", ErrStopped, err)
	}
	n.failpoint(fpInstallBetweenSwaps)
	// On the applier, once it has applied every entry handed to it.
	err := n.quiesceApplier(func(state *storage.StateDB) error {
		if err := state.Replace(path); err != nil {
			return fmt.Errorf("%w: install snapshot as state.db: %w", ErrStopped, err)
		}
		if got := state.AppliedIndex(); got != s.Index {
			return fmt.Errorf("%w: the installed snapshot %d/%d holds a state.db applied to %d", ErrStopped, s.Index, s.Term, got)
		}
		return nil
	})
	if err != nil {
		return err
	}
	n.handed, n.applied = s.Index, s.Index
	n.snapIndex = s.Index
	n.stats.snapshotsInstalled.Add(1)
	n.log.Info().Uint64("index", s.Index).Uint64("term", s.Term).Msg("snapshot installed")
	return n.adoptMembers(members)
}

// removeLeftovers deletes what an interrupted snapshot, state.db rebuild or
// install left in the data directory, once recoverState has used what it
// needs. (Half-received snapshot files are removed by snapshot.Open, whole
// ones by removeSnapshotFiles.)
func removeLeftovers(dataDir string, log zerolog.Logger) error {
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return fmt.Errorf("broker: read data directory: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		stale := name == compactStateFile ||
			(strings.HasPrefix(name, installPrefix) && (strings.HasSuffix(name, installSuffix) || strings.HasSuffix(name, ".tmp"))) ||
			(strings.HasPrefix(name, storage.StateDBFile+".") && strings.HasSuffix(name, ".tmp"))
		if !stale || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(dataDir, name)); err != nil {
			return fmt.Errorf("broker: remove leftover %s: %w", name, err)
		}
		log.Info().Str("file", name).Msg("removed a leftover of an interrupted snapshot")
	}
	return nil
}

// removeSnapshotFiles deletes every snapshot file: a snapshot file lives
// only while it is sent or received (decision 26), so any found at start
// is a leftover (or a kept file of a version before it).
func removeSnapshotFiles(store *snapshot.Store, log zerolog.Logger) error {
	metas, _ := store.List()
	for _, m := range metas {
		if err := store.Remove(m.Name()); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
			return err
		}
		log.Info().Str("file", m.Name()).Msg("removed a snapshot file (snapshots are written only while a follower needs one)")
	}
	return nil
}

// restoreMembers makes sure raft.db's members record is at least the one
// carried by the snapshot raft.db names (a version 2 snapshot file): the
// members record of the changes the compacted log no longer holds. An
// install records both in one write, so this repairs only a raft.db whose
// record was lost or is older than its snapshot.
func restoreMembers(raft *storage.RaftDB, store *snapshot.Store, log zerolog.Logger) error {
	s, err := raft.Snapshot()
	if err != nil || s.Index == 0 {
		return err
	}
	cur := raft.Members()
	if cur.Index >= s.Index {
		return nil
	}
	metas, _ := store.List()
	for _, m := range metas {
		if m.Index != s.Index || m.Term != s.Term || len(m.Members) == 0 {
			continue
		}
		sm, err := storage.DecodeMembers(m.Members)
		if err != nil {
			return fmt.Errorf("broker: snapshot %s: %w", m.Name(), err)
		}
		if sm.Index <= cur.Index {
			return nil
		}
		_, conf, err := raft.InitialState()
		if err != nil {
			return err
		}
		if err := raft.SetMembers(sm.Merge(cur), conf); err != nil {
			return err
		}
		log.Warn().Uint64("snapshot_index", s.Index).Uint64("members_index", sm.Index).
			Msg("members record restored from the snapshot (raft.db's was older)")
		return nil
	}
	return nil
}

// errStateLost: state.db is behind the log's base and nothing on this
// node holds the entries between; only a peer can give the state back.
var errStateLost = errors.New("broker: state.db is behind the compacted log")

// recoverState finishes an install that a crash interrupted: raft.db's log
// starts after state.db's applied index, so the entries between exist only
// in the snapshot raft.db names, whose body installSnapshot wrote out
// (fsynced) before it reset the log. It swaps that body in as state.db.
// (A data directory of a version that kept snapshot files may hold the
// snapshot as a file instead.) With neither, state.db was lost or replaced
// after the log was compacted: errStateLost.
func recoverState(raft *storage.RaftDB, state *storage.StateDB, store *snapshot.Store, dataDir string, log zerolog.Logger) error {
	first, err := raft.FirstIndex()
	if err != nil {
		return err
	}
	applied := state.AppliedIndex()
	if applied+1 >= first {
		return nil
	}
	s, err := raft.Snapshot()
	if err != nil {
		return err
	}
	path := installPath(dataDir, snapshot.Meta{Index: s.Index, Term: s.Term})
	if !fileExists(path) || s.Index < first-1 {
		metas, _ := store.List()
		found := false
		for _, m := range metas {
			if m.Index == s.Index && m.Term == s.Term && s.Index >= first-1 {
				if err := store.ExtractBody(m, path); err != nil {
					return fmt.Errorf("broker: restore state.db from snapshot %s: %w", m.Name(), err)
				}
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%w: %s has applied index %d, %s starts at index %d, and the state at its snapshot %d/%d is not on this node",
				errStateLost, state.Path(), applied, raft.Path(), first, s.Index, s.Term)
		}
	}
	if err := state.Replace(path); err != nil {
		return fmt.Errorf("broker: restore state.db from the snapshot %d/%d: %w", s.Index, s.Term, err)
	}
	if got := state.AppliedIndex(); got != s.Index {
		return fmt.Errorf("broker: the snapshot %d/%d holds a state.db applied to %d", s.Index, s.Term, got)
	}
	log.Warn().Uint64("applied_before", applied).Uint64("snapshot_index", s.Index).Msg("state.db restored from the snapshot (an install was interrupted)")
	return nil
}
