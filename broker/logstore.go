package broker

import (
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/storage"
)

// logStore is what the raft loop needs of raft.db: the core's read view of
// the log (raftlog.Storage) and the writes the loop makes there (decision
// 27). *storage.RaftDB is the shipped implementation; memLogStore
// (logstore_test.go) is the tests' in-memory twin. Every method is safe
// for concurrent use: the raft loop writes, and a snapshot job reads Term
// beside it. Opening raft.db, repairing it and recovering an interrupted
// install at start (broker.go, install.go) stay with the concrete type:
// they are about the file.
type logStore interface {
	raftlog.Storage
	// Save persists hs (unless empty) and ents durably before it returns;
	// an entry at or below the last index replaces it and every later one.
	Save(hs raftlog.HardState, ents []raftlog.Entry) error
	// SetMembers records the members record and the membership together,
	// as a committed change is handed to the applier.
	SetMembers(m storage.Members, cs raftlog.ConfState) error
	// Recovering and SetRecovering read and durably set the recovering
	// mark (decisions 8 and 25).
	Recovering() bool
	SetRecovering(on bool) error
	// CreateSnapshot records a snapshot at index i with membership conf
	// (decision 26: state.db is the snapshot's body); Compact deletes the
	// log up to index at once; ApplySnapshotWithMembers resets the log to an
	// installed snapshot and records its members in the same write.
	CreateSnapshot(i uint64, conf raftlog.ConfState) (raftlog.SnapshotMeta, error)
	Compact(index uint64) error
	// CompactLater schedules Compact(index) in steps that ride in later
	// Saves (CompactStep takes one when no Save did), so the raft loop never
	// deletes thousands of entries in one piece; index must be covered by
	// the recorded snapshot.
	CompactLater(index uint64) error
	CompactStep() error
	ApplySnapshotWithMembers(meta raftlog.SnapshotMeta, m storage.Members) error
	// Stats and Rebuild measure and rewrite a bloated file (decision 7);
	// a store without a file reports zero stats and rebuilds nothing.
	Stats() (storage.FileStats, error)
	Rebuild() error
}

var _ logStore = (*storage.RaftDB)(nil)
