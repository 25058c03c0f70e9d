package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/storage"

	"github.com/raftmq/raftmq/internal/fsutil"
)

// step passes a peer message to the core. A follower that lost its data
// (wiped or repaired data directory) needs nothing from the broker any
// more: the core advances a follower's commit from heartbeats only up to
// what the current leader verified in this term, a leader re-probes (and
// if compacted, sends a snapshot to) a follower that rejects below its
// acknowledged match, and a node started recovering neither votes nor
// campaigns until caught up (docs/decisions.md, 8).
func (n *node) step(m raftlog.Message) {
	if m.Type == raftlog.MsgApp && n.disk.Full() {
		// Out of space: append nothing, answer nothing (decision 19). The
		// leader sees no progress from this node, the cluster goes on with
		// the others, and once space is back the next append (or the one a
		// heartbeat answer prompts) finds the gap and this node catches up.
		n.stats.appendsDropped.Add(1)
		return
	}
	if err := n.core.Step(m); err != nil {
		n.log.Debug().Err(err).Stringer("type", m.Type).Int("from", nodeIndex(m.From)).Msg("step")
	}
}

// noteRecovered clears raft.db's recovering flag once the core reports it
// caught up (ss from a Ready, before that Ready's messages are sent, so
// the flag is gone before the node's first vote can be). Kept in the
// broker: the flag is the broker's persisted record, not the core's.
//
// It also persists the opposite change: the core put a node with an empty
// log into recovering mode because the cluster has committed entries (it
// may have lost its data; docs/decisions.md, 9), or a node that had
// caught up was demoted meanwhile and waits to be promoted back
// (decision 25). The flag is durable
// before the Ready's messages leave, so a restart cannot turn the node
// back into a voter before it has caught up.
func (n *node) noteRecovered(ss *raftlog.SoftState) error {
	if ss != nil && ss.Recovering && !n.raft.Recovering() {
		if err := n.raft.SetRecovering(true); err != nil {
			return fmt.Errorf("%w: set the recovering flag: %w", ErrStopped, err)
		}
		st := n.core.Status()
		msg := "empty log but the cluster has committed entries: this node may have lost its data; recovering (no votes) until caught up"
		if st.LastIndex > 0 {
			msg = "demoted to learner while recovering; recovering until the leader promotes it back"
		}
		n.log.Warn().Uint64("term", st.Term).Msg(msg)
		return nil
	}
	if ss == nil || ss.Recovering || !n.raft.Recovering() {
		return nil
	}
	if err := n.raft.SetRecovering(false); err != nil {
		return fmt.Errorf("%w: clear the recovering flag: %w", ErrStopped, err)
	}
	st := n.core.Status()
	n.log.Info().Uint64("commit", st.Commit).Uint64("term", st.Term).
		Msg("recovered: caught up with the cluster; this node votes and may lead again")
	return nil
}

// damagedDirPrefix names the directories damaged files are moved into:
// <data-dir>/damaged-<UTC timestamp>/.
const damagedDirPrefix = "damaged-"

// repairDataDir verifies the data directory before anything opens it:
// raft.db (bbolt's consistency check, every entry's checksum, the meta
// records) and state.db (bbolt's check, every record's checksum). Snapshot
// files are not checked: any found at start is a leftover of a transfer
// and is deleted (decision 26); one that must finish an install is
// verified as it is read.
//
// Damaged raft.db or state.db: in a cluster of more than one node, the
// whole data (both files and the snapshots directory) is moved into
// <data-dir>/damaged-<UTC time>/, never deleted, and repairDataDir reports
// that the node must start empty and recovering; in a one-node cluster
// there is nothing to repair from, so it refuses.
func repairDataDir(cfg config.Node, log zerolog.Logger) (recover bool, err error) {
	dir := cfg.DataDir
	raftPath, statePath := filepath.Join(dir, storage.RaftDBFile), filepath.Join(dir, storage.StateDBFile)
	snapDir := filepath.Join(dir, storage.SnapshotsDir)
	clean, err := takeCleanStop(dir)
	if err != nil {
		return false, err
	}
	if !fileExists(raftPath) && !fileExists(statePath) {
		return false, nil
	}
	if clean {
		// A graceful stop closed both files after their last commit
		// succeeded: no crash or failed write can have torn them, and
		// damage while stopped (bit rot, a hand edit) is caught by the
		// checksums every read verifies, as while running. Sizes and
		// modification times matched the marker's: neither file was
		// written or replaced since.
		log.Info().Msg("clean stop recorded: skipping the full check of raft.db and state.db")
		return false, nil
	}
	rep, err := storage.Inspect(dir)
	if err != nil {
		return false, fmt.Errorf("broker: verify %s: %w", dir, err)
	}
	var damaged []string
	if rep.RaftDBDamaged {
		damaged = append(damaged, raftPath)
	}
	if rep.StateDBDamaged {
		damaged = append(damaged, statePath)
	}
	if len(damaged) == 0 {
		return false, nil
	}
	problems := rep.Problems
	if len(cfg.Cluster.Addresses) == 1 {
		return false, fmt.Errorf("%w: %v are damaged (%v) and this is a one-node cluster: there is no peer to repair from; "+
			"restore the data directory from a backup (raftmq inspect --data-dir %s shows the damage)", ErrDamaged, damaged, problems, dir)
	}
	aside, err := makeDamagedDir(dir)
	if err != nil {
		return false, err
	}
	var moved []string
	for _, p := range []string{raftPath, statePath, snapDir} {
		if !fileExists(p) {
			continue
		}
		if err := moveAside(p, filepath.Join(aside, filepath.Base(p))); err != nil {
			return false, err
		}
		moved = append(moved, p)
	}
	log.Error().Strs("damaged", damaged).Strs("problems", problems).Strs("moved", moved).Str("moved_to", aside).
		Msg("damaged data files moved aside (not deleted); starting empty in recovering mode: this node rejoins from the leader " +
			"by snapshot and log, and neither votes nor leads until it has caught up")
	return true, nil
}

// makeDamagedDir creates a fresh <dir>/damaged-<UTC time>[-N] directory.
func makeDamagedDir(dir string) (string, error) {
	base := filepath.Join(dir, damagedDirPrefix+time.Now().UTC().Format("20060102T150405Z"))
	path := base
	for i := 1; ; i++ {
		err := os.Mkdir(path, 0o750)
		if err == nil {
			if err := fsutil.SyncDir(dir); err != nil {
				return "", fmt.Errorf("broker: create %s: %w", path, err)
			}
			return path, nil
		}
		if !errors.Is(err, os.ErrExist) || i > 100 {
			return "", fmt.Errorf("broker: create %s: %w", path, err)
		}
		path = fmt.Sprintf("%s-%d", base, i)
	}
}

// moveAside renames src to dst (creating dst's directory) and fsyncs both
// directories, so the move survives a crash.
func moveAside(src, dst string) error {
	if err := fsutil.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return fmt.Errorf("broker: move %s aside: %w", src, err)
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("broker: move %s aside: %w", src, err)
	}
	// Destination first: a cut between the two leaves the file in both
	// places (found again at the next start), never in neither.
	for _, d := range []string{filepath.Dir(dst), filepath.Dir(src)} {
		if err := fsutil.SyncDir(d); err != nil {
			return fmt.Errorf("broker: move %s aside: %w", src, err)
		}
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
