package storage

import (
	"errors"
	"fmt"
	"sync"

	"github.com/raftmq/raftmq/raftlog"
	"go.etcd.io/bbolt"
)

// raftFormatVersion is raft.db's layout version, stored in meta.
const raftFormatVersion = 1

var (
	bucketMeta = []byte("meta")
	bucketLog  = []byte("log")
)

// Keys of raft.db's meta bucket; every value is a sealed record.
const (
	keyFormat    = "format"     // 1 byte: raftFormatVersion
	keyClusterID = "cluster_id" // the cluster id, written once
	keyHardState = "hardstate"  // term, vote, commit
	keyConf      = "conf"       // membership
	keyBase      = "base"       // index and term of the entry before the first one kept
	keySnapshot  = "snapshot"   // meta of the newest snapshot (CreateSnapshot/ApplySnapshot/Compact)
	keyRecover   = "recovering" // 1 byte, present while the node recovers lost data (SetRecovering)
	keyMembers   = "members"    // JSON Members: addresses and removed ids (SetMembers)
)

// RaftDB is raft.db: the node's hard state, membership and Raft log.
//
// One goroutine (the one that owns the raftlog core) writes; any goroutine
// may read. Reads and writes are serialized by mu.
type RaftDB struct {
	path      string
	clusterID string
	db        *bbolt.DB

	mu sync.Mutex
	// Caches of what is durable in the file, guarded by mu.
	// Invariant: baseIndex <= lastIndex; the log bucket holds exactly the
	// entries baseIndex+1..lastIndex; lastTerm is the term of lastIndex
	// (baseTerm when the log is empty).
	hs        raftlog.HardState
	conf      raftlog.ConfState
	baseIndex uint64
	baseTerm  uint64
	lastIndex uint64
	lastTerm  uint64
	// failed is the first write failure; every later write is refused.
	failed  error
	snap    raftlog.SnapshotMeta
	recover bool
	members Members
	// compactTo is where a compaction scheduled with CompactLater ends
	// (done when baseIndex reaches it); stepped says a Save took a step
	// since the last CompactStep.
	compactTo uint64
	stepped   bool
}

var _ raftlog.Storage = (*RaftDB)(nil)

// OpenRaftDB opens (creating if missing) the raft.db at path for the cluster
// clusterID. A file created for another cluster gives ErrClusterMismatch; a
// damaged file ErrCorrupt; a file another process holds ErrLocked (after
// about a second).
func OpenRaftDB(path, clusterID string) (*RaftDB, error) {
	if clusterID == "" {
		return nil, fmt.Errorf("%w: open %s: empty cluster id", ErrInvalid, path)
	}
	if err := removeStale(path + rebuildSuffix); err != nil {
		return nil, err
	}
	db, err := openBolt(path, false)
	if err != nil {
		return nil, err
	}
	// Only a test build (tag skipfsync) turns this on, to prove the
	// power-loss suite catches a missing fsync.
	db.NoSync = skipRaftFsync
	r := &RaftDB{path: path, clusterID: clusterID, db: db}
	err = guard(path, func() error { return db.Update(r.initLocked) })
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return r, nil
}

// initLocked creates the buckets of a new file or checks an existing one,
// and loads the caches.
func (r *RaftDB) initLocked(tx *bbolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return fmt.Errorf("storage: init %s: %w", r.path, err)
	}
	logB, err := tx.CreateBucketIfNotExists(bucketLog)
	if err != nil {
		return fmt.Errorf("storage: init %s: %w", r.path, err)
	}
	format, ok, err := getSealed(meta, keyFormat)
	if err != nil {
		return corruptError(r.path, err.Error())
	}
	if !ok {
		if k, _ := logB.Cursor().First(); k != nil {
			return corruptError(r.path, "log entries without format record")
		}
		if err := putSealed(meta, keyFormat, []byte{raftFormatVersion}); err != nil {
			return fmt.Errorf("storage: init %s: %w", r.path, err)
		}
		if err := putSealed(meta, keyClusterID, []byte(r.clusterID)); err != nil {
			return fmt.Errorf("storage: init %s: %w", r.path, err)
		}
		return nil
	}
	if len(format) != 1 || format[0] != raftFormatVersion {
		return corruptError(r.path, fmt.Sprintf("unknown format version %v (this build reads %d)", format, raftFormatVersion))
	}
	st, err := loadRaftState(tx, r.path)
	if err != nil {
		return err
	}
	if st.clusterID != r.clusterID {
		return fmt.Errorf("%w: %s belongs to cluster %q but this node is configured for cluster %q; point --data-dir at this cluster's data or use the cluster file that created it",
			ErrClusterMismatch, r.path, st.clusterID, r.clusterID)
	}
	if err := checkBounds(r.path, st); err != nil {
		return err
	}
	r.hs, r.conf, r.snap, r.recover, r.members = st.hs, st.conf, st.snap, st.recovering, st.members
	r.baseIndex, r.baseTerm = st.baseIndex, st.baseTerm
	r.lastIndex, r.lastTerm = st.lastIndex, st.lastTerm
	return nil
}

// raftState is everything raft.db's meta bucket and log bounds hold.
type raftState struct {
	clusterID           string
	hs                  raftlog.HardState
	conf                raftlog.ConfState
	snap                raftlog.SnapshotMeta
	baseIndex, baseTerm uint64
	lastIndex, lastTerm uint64
	firstKey            uint64 // first key in the log bucket, 0 if empty
	recovering          bool
	members             Members
}

// loadRaftState reads and checks the meta records and the log's bounds.
// It is shared by OpenRaftDB and Inspect.
func loadRaftState(tx *bbolt.Tx, path string) (raftState, error) {
	var st raftState
	meta, logB := tx.Bucket(bucketMeta), tx.Bucket(bucketLog)
	if meta == nil || logB == nil {
		return st, corruptError(path, "missing meta or log bucket (not a raft.db?)")
	}
	get := func(key string) ([]byte, bool, error) {
		v, ok, err := getSealed(meta, key)
		if err != nil {
			return nil, ok, corruptError(path, err.Error())
		}
		return v, ok, nil
	}
	id, ok, err := get(keyClusterID)
	if err != nil {
		return st, err
	}
	if !ok {
		return st, corruptError(path, "missing cluster id record")
	}
	st.clusterID = string(id)
	if v, ok, err := get(keyHardState); err != nil {
		return st, err
	} else if ok {
		if st.hs, err = decodeHardState(v); err != nil {
			return st, corruptError(path, err.Error())
		}
	}
	if v, ok, err := get(keyConf); err != nil {
		return st, err
	} else if ok {
		r := reader{b: v}
		st.conf = readConfState(&r)
		if err := r.done("membership"); err != nil {
			return st, corruptError(path, err.Error())
		}
	}
	if v, ok, err := get(keySnapshot); err != nil {
		return st, err
	} else if ok {
		if st.snap, err = decodeSnapshotMeta(v); err != nil {
			return st, corruptError(path, err.Error())
		}
	}
	if v, ok, err := get(keyRecover); err != nil {
		return st, err
	} else if ok {
		if len(v) != 1 || v[0] != 1 {
			return st, corruptError(path, fmt.Sprintf("recovering record %x, want 01", v))
		}
		st.recovering = true
	}
	if v, ok, err := get(keyMembers); err != nil {
		return st, err
	} else if ok {
		if st.members, err = decodeMembers(v); err != nil {
			return st, corruptError(path, err.Error())
		}
	}
	if v, ok, err := get(keyBase); err != nil {
		return st, err
	} else if ok {
		r := reader{b: v}
		st.baseIndex, st.baseTerm = r.u64("base index"), r.u64("base term")
		if err := r.done("log base"); err != nil {
			return st, corruptError(path, err.Error())
		}
	}
	st.lastIndex, st.lastTerm = st.baseIndex, st.baseTerm
	c := logB.Cursor()
	firstK, _ := c.First()
	lastK, lastV := c.Last()
	if firstK == nil {
		return st, nil
	}
	if len(firstK) != 8 || len(lastK) != 8 {
		return st, corruptError(path, "log key is not 8 bytes")
	}
	st.firstKey = beU64(firstK)
	if st.firstKey != st.baseIndex+1 {
		return st, corruptError(path, fmt.Sprintf("log starts at index %d but its base is %d", st.firstKey, st.baseIndex))
	}
	st.lastIndex = beU64(lastK)
	if st.lastTerm, err = entryTerm(st.lastIndex, lastV); err != nil {
		return st, entryCorruptError(path, st.lastIndex, err)
	}
	return st, nil
}

// checkBounds refuses a raft.db whose term or index passes raftlog.MaxTerm:
// the core would refuse it anyway, and the operator needs to know why and
// what to do. Only a forged peer frame (before peer frames were validated)
// or a damaged record produces one.
func checkBounds(path string, st raftState) error {
	for _, f := range [...]struct {
		name string
		v    uint64
	}{{"term", st.hs.Term}, {"commit index", st.hs.Commit}, {"last log index", st.lastIndex},
		{"last log term", st.lastTerm}, {"snapshot index", st.snap.Index}, {"snapshot term", st.snap.Term}} {
		if f.v > raftlog.MaxTerm {
			return fmt.Errorf("%w: %s holds %s %d, above %d, which no cluster reaches: a forged peer frame set it "+
				"(brokers before peer frames were validated accepted one). The node cannot go on from it. "+
				"If a majority of the nodes still hold sane data, move this node's data directory aside and start it "+
				"with --recover to rejoin from them; if every node holds it, restore the data directories from a backup",
				ErrOutOfRange, path, f.name, f.v, raftlog.MaxTerm)
		}
	}
	return nil
}

func entryCorruptError(path string, index uint64, err error) error {
	return corruptError(path, fmt.Sprintf("log entry %d: %v", index, err))
}

// Path returns the file's path.
func (r *RaftDB) Path() string { return r.path }

// ClusterID returns the cluster id stored in the file.
func (r *RaftDB) ClusterID() string { return r.clusterID }

// Close closes the file. The RaftDB must not be used afterwards.
func (r *RaftDB) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.db.Close(); err != nil {
		return fmt.Errorf("storage: close %s: %w", r.path, err)
	}
	return nil
}

// update runs fn in one write transaction (one fsync) and turns a bbolt
// panic on damaged pages into ErrCorrupt. Call with mu held.
func (r *RaftDB) updateLocked(what string, fn func(tx *bbolt.Tx) error) error {
	if r.failed != nil {
		return fmt.Errorf("%w: %s in %s (first failure: %v)", ErrWriteFailed, what, r.path, r.failed)
	}
	var fnErr error
	err := guard(r.path, func() error {
		return r.db.Update(func(tx *bbolt.Tx) error { fnErr = fn(tx); return fnErr })
	})
	if err != nil && fnErr == nil {
		// The commit itself (its writes or fsync) failed.
		r.failed = err
	}
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("storage: %s in %s: %w", what, r.path, err)
	}
	return err
}

func (r *RaftDB) viewLocked(fn func(tx *bbolt.Tx) error) error {
	return guard(r.path, func() error { return r.db.View(fn) })
}
