package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/bbolt"
)

// Names inside a data directory.
const (
	RaftDBFile   = "raft.db"
	StateDBFile  = "state.db"
	SnapshotsDir = "snapshots"
)

// maxReportedProblems bounds Report.Problems; the rest are counted.
const maxReportedProblems = 50

// Report is what Inspect found in a data directory. Problems lists every
// damage or inconsistency found; it is empty for a healthy directory.
type Report struct {
	DataDir   string `json:"data_dir"`
	RaftDB    string `json:"raft_db"`
	StateDB   string `json:"state_db"`
	ClusterID string `json:"cluster_id"`
	Term      uint64 `json:"term"`
	Vote      uint64 `json:"vote"`
	// Commit is the commit index last persisted with term and vote: a hint,
	// since a commit-only change is not persisted (the leader re-sends it), so
	// it may lag AppliedIndex.
	Commit         uint64       `json:"commit"`
	Voters         []uint64     `json:"voters"`
	SnapshotIndex  uint64       `json:"snapshot_index"`
	FirstIndex     uint64       `json:"first_index"`
	LastIndex      uint64       `json:"last_index"`
	Entries        uint64       `json:"entries"`
	ChecksumErrors uint64       `json:"checksum_errors"`
	AppliedIndex   uint64       `json:"applied_index"`
	Topics         []TopicDepth `json:"topics"`
	Sessions       uint64       `json:"sessions"`
	Problems       []string     `json:"problems"`
	// RaftDBDamaged and StateDBDamaged say which existing file a problem was
	// found in (a missing file is a problem but not damage).
	RaftDBDamaged  bool `json:"raft_db_damaged"`
	StateDBDamaged bool `json:"state_db_damaged"`
	// Recovering: raft.db is marked recovering (RaftDB.SetRecovering).
	Recovering bool `json:"recovering"`

	droppedProblems int
}

// OK reports whether Inspect found no problem.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) >= maxReportedProblems {
		r.droppedProblems++
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Inspect reads dataDir's raft.db and state.db read-only, verifies every
// log entry's checksum, runs bbolt's consistency check on both files and
// summarizes them. Damage goes into Report.Problems; the error is set only
// when the directory cannot be inspected at all (it does not exist, or a
// running broker holds a file: ErrLocked).
func Inspect(dataDir string) (Report, error) {
	rep := Report{
		DataDir: dataDir,
		RaftDB:  filepath.Join(dataDir, RaftDBFile),
		StateDB: filepath.Join(dataDir, StateDBFile),
		Topics:  []TopicDepth{},
	}
	info, err := os.Stat(dataDir)
	if err != nil {
		return rep, fmt.Errorf("storage: inspect %s: %w", dataDir, err)
	}
	if !info.IsDir() {
		return rep, fmt.Errorf("%w: inspect %s: not a directory", ErrInvalid, dataDir)
	}
	raftOK, err := inspectFile(&rep, rep.RaftDB, inspectRaft)
	if err != nil {
		return rep, err
	}
	rep.RaftDBDamaged = !raftOK && exists(rep.RaftDB)
	stateOK, err := inspectFile(&rep, rep.StateDB, inspectState)
	if err != nil {
		return rep, err
	}
	rep.StateDBDamaged = !stateOK && exists(rep.StateDB)
	if raftOK && stateOK {
		if rep.AppliedIndex > rep.LastIndex {
			rep.problem("state.db has applied index %d, beyond raft.db's last index %d", rep.AppliedIndex, rep.LastIndex)
		}
		if base := rep.FirstIndex - 1; base > rep.AppliedIndex && base > rep.SnapshotIndex {
			rep.problem("raft.db is compacted to %d but state.db has applied only %d and the newest snapshot is at %d: entries %d..%d are lost",
				base, rep.AppliedIndex, rep.SnapshotIndex, max(rep.AppliedIndex, rep.SnapshotIndex)+1, base)
		}
	}
	if rep.droppedProblems > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("... and %d more problems", rep.droppedProblems))
	}
	return rep, nil
}

// inspectFile opens path read-only and runs fn in a read transaction. It
// returns ok=false if the file is missing or damaged (recorded as a
// problem) and an error only for ErrLocked.
func inspectFile(rep *Report, path string, fn func(rep *Report, tx *bbolt.Tx, path string) error) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		rep.problem("%s does not exist", path)
		return false, nil
	}
	db, err := openBolt(path, true)
	if errors.Is(err, ErrLocked) {
		return false, err
	}
	if err != nil {
		rep.problem("%v", err)
		return false, nil
	}
	defer db.Close()
	before := len(rep.Problems) + rep.droppedProblems
	err = guard(path, func() error {
		return db.View(func(tx *bbolt.Tx) error {
			for cerr := range tx.Check() {
				rep.problem("%s: bbolt consistency check: %v", path, cerr)
			}
			return fn(rep, tx, path)
		})
	})
	if err != nil {
		rep.problem("%v", err)
	}
	return len(rep.Problems)+rep.droppedProblems == before, nil
}

func inspectRaft(rep *Report, tx *bbolt.Tx, path string) error {
	st, err := loadRaftState(tx, path)
	if err != nil && st.clusterID == "" {
		return err
	}
	if err != nil {
		// The meta records are fine but the last entry is not: still scan.
		rep.problem("%v", err)
	}
	rep.ClusterID = st.clusterID
	rep.Recovering = st.recovering
	rep.Term, rep.Vote, rep.Commit = st.hs.Term, st.hs.Vote, st.hs.Commit
	rep.Voters = st.conf.Voters
	rep.SnapshotIndex = st.snap.Index
	rep.FirstIndex = st.baseIndex + 1
	rep.LastIndex = st.baseIndex
	want := st.baseIndex + 1
	return tx.Bucket(bucketLog).ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			rep.problem("%s: log key %x is not 8 bytes", path, k)
			return nil
		}
		index := beU64(k)
		if index != want {
			rep.problem("%s: log entries %d..%d are missing", path, want, index-1)
		}
		want = index + 1
		rep.Entries++
		rep.LastIndex = index
		if _, err := decodeEntry(index, v); err != nil {
			rep.ChecksumErrors++
			rep.problem("%v", entryCorruptError(path, index, err))
		}
		return nil
	})
}

func inspectState(rep *Report, tx *bbolt.Tx, path string) error {
	if tx.Bucket(bucketMeta) == nil {
		return corruptError(path, "missing meta bucket (not a state.db?)")
	}
	var err error
	if rep.AppliedIndex, err = getCounter(tx, path, keyApplied); err != nil {
		return err
	}
	if rep.Sessions, err = sessionCount(tx, path); err != nil {
		return err
	}
	if rep.Topics, err = readTopicDepths(tx, path); err != nil {
		return err
	}
	verifyStateRecords(rep, tx, path)
	return nil
}

// exists reports whether path names an existing file.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
