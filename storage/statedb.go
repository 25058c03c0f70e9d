package storage

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// stateFormatVersion is state.db's layout version, stored in meta. Version
// 1 (before leased delivery) is upgraded in place when opened (migrate.go).
const (
	stateFormatVersion  = 2
	stateFormatVersion1 = 1
)

// state.db buckets. Topic and message records are sealed (CRC32C).
var (
	// bucketMeta (shared name with raft.db): format, applied, next_topic, sessions_n.
	bucketTopics     = []byte("topics")      // creation seq (8 B) -> topic record
	bucketTopicNames = []byte("topic_names") // name -> creation seq (8 B)
	bucketQueues     = []byte("queues")      // creation seq (8 B) -> bucket: message seq (8 B) -> message
	bucketSessions   = []byte("sessions")    // client id -> session record
	bucketSessionLRU = []byte("session_lru") // last-use index (8 B) | client id -> empty
	// Leased delivery (decision 16).
	bucketReady      = []byte("ready")      // creation seq (8 B) -> bucket: message seq (8 B) -> empty, the ready messages
	bucketDeliveries = []byte("deliveries") // creation seq | message seq -> delivery record, for messages delivered at least once
	bucketExpiry     = []byte("expiry")     // until (8 B, ms) | creation seq | message seq -> empty, leased and delayed messages
)

// stateBuckets are state.db's top-level buckets.
var stateBuckets = [][]byte{bucketMeta, bucketTopics, bucketTopicNames, bucketQueues, bucketSessions, bucketSessionLRU,
	bucketReady, bucketDeliveries, bucketExpiry}

const (
	keyApplied   = "applied"    // u64: last applied log index
	keyNextTopic = "next_topic" // u64: creation seq of the next topic
	keySessionsN = "sessions_n" // u64: number of sessions
	keyClock     = "clock"      // u64: the state machine's clock, Unix ms (only ever moves forward)
)

// StateOptions configures a StateDB.
type StateOptions struct {
	// MaxSessions bounds the client sessions kept (>= 1); when a new client
	// would exceed it, the session used least recently (by log index) is
	// evicted.
	MaxSessions int
	// Group commit (decision 4): applied entries collect in one open write
	// transaction, committed (two fdatasyncs) once it holds GroupEntries
	// entries or GroupBytes bytes of entry data, or its first entry is
	// GroupDelay old (checked by Apply and CommitIfDue). GroupEntries 0
	// commits every Apply.
	GroupEntries int
	GroupBytes   uint64
	GroupDelay   time.Duration
}

// StateDB is state.db, the topic store: raftmq's state machine.
//
// One goroutine applies; any goroutine may read. Reads see every applied
// entry, durable or not; CopyCompact and WriteTo see only the durable ones.
//
// Applied entries are not durable at once: they collect in one write
// transaction (tx) that is committed in groups (StateOptions). After a crash
// the file holds a prefix of what was applied, with its applied index in the
// same transaction; the caller re-applies the log from DurableAppliedIndex,
// and Apply being deterministic gives the same state and results.
type StateDB struct {
	path string
	opts StateOptions
	db   *bbolt.DB

	mu      sync.Mutex // serializes Apply, reads through tx and commits; guards the fields below
	applied uint64     // last applied index (durable or not)
	durable uint64     // applied index of the last committed transaction
	// tx is the open write transaction holding the entries applied since
	// durable; nil when there are none.
	tx           *bbolt.Tx
	groupEntries int
	groupBytes   uint64
	groupSince   time.Time // when tx's first entry was applied
	// failed is set when a transaction could not be written: the file (and
	// what the mmap shows of it) can no longer be trusted, so every later
	// call fails with it (fsyncgate: a failed fsync is not retried).
	failed  error
	commits atomic.Uint64 // committed apply transactions
	// expiry is NextExpiry's answer, set wherever the expiry index can
	// change (Apply, open, swap, failure) so that reading it never takes
	// mu: the raft loop asks on every tick, and mu is held through a group
	// commit's fdatasyncs.
	expiry atomic.Pointer[expiryAnswer]
}

// expiryAnswer is what NextExpiry returns.
type expiryAnswer struct {
	until uint64
	ok    bool
	err   error
}

// noteExpiry records the earliest lease or delay end that tx holds.
func (s *StateDB) noteExpiry(tx *bbolt.Tx) {
	var e expiryAnswer
	if k, _ := tx.Bucket(bucketExpiry).Cursor().First(); len(k) >= 8 {
		e.until, e.ok = beU64(k), true
	}
	s.expiry.Store(&e)
}

// fail makes err sticky (mu held): every later call returns it.
func (s *StateDB) fail(err error) error {
	s.failed = err
	s.expiry.Store(&expiryAnswer{err: err})
	return err
}

// TopicDepth is one topic's queue: its name, the number of messages queued
// and their total bytes.
type TopicDepth struct {
	Name  string `json:"name"`
	Depth uint64 `json:"depth"`
	Bytes uint64 `json:"bytes"`
}

// OpenStateDB opens (creating if missing) the state.db at path.
func OpenStateDB(path string, opts StateOptions) (*StateDB, error) {
	if opts.MaxSessions < 1 {
		return nil, fmt.Errorf("%w: open %s: max sessions %d must be at least 1", ErrInvalid, path, opts.MaxSessions)
	}
	s := &StateDB{path: path, opts: opts}
	if err := s.openLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// openLocked opens (creating if missing) the file at s.path, checks its
// format and loads the applied index.
func (s *StateDB) openLocked() error {
	path := s.path
	s.applied, s.durable, s.tx = 0, 0, nil
	s.expiry.Store(&expiryAnswer{err: fmt.Errorf("storage: %s is not open", path)})
	db, err := openBolt(path, false)
	if err != nil {
		return err
	}
	err = guard(path, func() error {
		return db.Update(func(tx *bbolt.Tx) error {
			for _, name := range stateBuckets {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("storage: init %s: %w", path, err)
				}
			}
			meta := tx.Bucket(bucketMeta)
			format, ok, err := getSealed(meta, keyFormat)
			if err != nil {
				return corruptError(path, err.Error())
			}
			if !ok {
				return putSealed(meta, keyFormat, []byte{stateFormatVersion})
			}
			if len(format) == 1 && format[0] == stateFormatVersion1 {
				if err := migrateV1(tx, path); err != nil {
					return err
				}
			} else if len(format) != 1 || format[0] != stateFormatVersion {
				return corruptError(path, fmt.Sprintf("unknown format version %v (this build reads %d and %d)", format, stateFormatVersion1, stateFormatVersion))
			}
			s.applied, err = getCounter(tx, path, keyApplied)
			return err
		})
	})
	if err == nil {
		err = guard(path, func() error {
			return db.View(func(tx *bbolt.Tx) error {
				s.noteExpiry(tx)
				return nil
			})
		})
	}
	if err != nil {
		_ = db.Close()
		return err
	}
	s.durable = s.applied
	s.db = db
	return nil
}

// getCounter reads a u64 record of the meta bucket (0 if absent).
func getCounter(tx *bbolt.Tx, path, key string) (uint64, error) {
	v, ok, err := getSealed(tx.Bucket(bucketMeta), key)
	if err != nil {
		return 0, corruptError(path, err.Error())
	}
	if !ok {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, corruptError(path, fmt.Sprintf("record %q is %d bytes, want 8", key, len(v)))
	}
	return beU64(v), nil
}

func putCounter(tx *bbolt.Tx, key string, v uint64) error {
	return putSealed(tx.Bucket(bucketMeta), key, putU64(nil, v))
}

// Path returns the file's path.
func (s *StateDB) Path() string { return s.path }

// AppliedIndex returns the index of the last entry applied, durable or not.
func (s *StateDB) AppliedIndex() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

// DurableAppliedIndex returns the applied index the file holds on disk: a
// crash now restarts from it. The log must be kept from the entry after it.
func (s *StateDB) DurableAppliedIndex() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.durable
}

// Commits returns the number of apply transactions committed so far.
func (s *StateDB) Commits() uint64 { return s.commits.Load() }

// Commit makes every applied entry durable (one bbolt commit, two
// fdatasyncs) if any is pending.
func (s *StateDB) Commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commitLocked()
}

// CommitIfDue commits the pending entries if the oldest was applied at
// least GroupDelay before now.
func (s *StateDB) CommitIfDue(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if s.tx == nil || now.Sub(s.groupSince) < s.opts.GroupDelay {
		return nil
	}
	return s.commitLocked()
}

func (s *StateDB) commitLocked() error {
	if s.failed != nil {
		return s.failed
	}
	if s.tx == nil {
		return nil
	}
	tx := s.tx
	s.tx = nil
	if err := guard(s.path, tx.Commit); err != nil {
		// bbolt rolled the transaction back; what it wrote before the
		// failure may still show through the mmap.
		return s.fail(fmt.Errorf("%w: commit applied entries %d..%d to %s: %w", ErrWriteFailed, s.durable+1, s.applied, s.path, err))
	}
	s.durable = s.applied
	s.commits.Add(1)
	return nil
}

// rollbackLocked drops the pending entries: applied falls back to durable.
func (s *StateDB) rollbackLocked() {
	if s.tx != nil {
		_ = s.tx.Rollback()
		s.tx = nil
	}
	s.applied = s.durable
}

// Close commits the pending entries (unless a write failed) and closes the
// file. The StateDB must not be used afterwards.
func (s *StateDB) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cerr := s.commitLocked()
	s.rollbackLocked()
	s.expiry.Store(&expiryAnswer{err: fmt.Errorf("storage: %s is closed", s.path)})
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("storage: close %s: %w", s.path, err)
	}
	return cerr
}

// view reads everything applied: through the open write transaction if
// there is one (holding mu, so Apply waits), else a read transaction.
func (s *StateDB) view(fn func(tx *bbolt.Tx) error) error {
	s.mu.Lock()
	if s.failed != nil {
		defer s.mu.Unlock()
		return s.failed
	}
	if s.tx != nil {
		defer s.mu.Unlock()
		return guard(s.path, func() error { return fn(s.tx) })
	}
	db := s.db // Replace swaps it
	s.mu.Unlock()
	return guard(s.path, func() error { return db.View(fn) })
}

// viewDurable reads what is committed, in a read transaction that runs
// beside Apply.
func (s *StateDB) viewDurable(fn func(tx *bbolt.Tx) error) error {
	s.mu.Lock()
	db, failed := s.db, s.failed
	s.mu.Unlock()
	if failed != nil {
		return failed
	}
	return guard(s.path, func() error { return db.View(fn) })
}

// Topics returns the topic names in creation order.
func (s *StateDB) Topics() ([]string, error) {
	depths, err := s.TopicDepths()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(depths))
	for i, d := range depths {
		names[i] = d.Name
	}
	return names, nil
}

// TopicDepths returns every topic, in creation order, with its queue depth.
func (s *StateDB) TopicDepths() ([]TopicDepth, error) {
	var out []TopicDepth
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		out, err = readTopicDepths(tx, s.path)
		return err
	})
	return out, err
}

func readTopicDepths(tx *bbolt.Tx, path string) ([]TopicDepth, error) {
	out := []TopicDepth{}
	b := tx.Bucket(bucketTopics)
	if b == nil {
		return nil, corruptError(path, "missing topics bucket (not a state.db?)")
	}
	err := b.ForEach(func(k, v []byte) error {
		payload, err := unseal(k, v)
		if err != nil {
			return corruptError(path, err.Error())
		}
		t, err := decodeTopic(payload)
		if err != nil {
			return corruptError(path, fmt.Sprintf("topic record %x: %v", k, err))
		}
		out = append(out, TopicDepth{Name: t.name, Depth: t.count, Bytes: t.bytes})
		return nil
	})
	return out, err
}

// WriteTo writes a consistent copy of the whole committed file (one read
// transaction) to w, for snapshots.
func (s *StateDB) WriteTo(w io.Writer) (int64, error) {
	var n int64
	err := s.viewDurable(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("storage: copy %s: %w", s.path, err)
	}
	return n, err
}

// topic is a topic record. Invariants: the queue bucket holds count
// messages, all with sequences below tail, of bytes bytes in total; leased
// of them have a leased delivery record, delayed a delayed one, and the
// other count-leased-delayed are in the topic's ready bucket.
type topic struct {
	name          string
	tail          uint64 // sequence the next message gets
	count         uint64
	bytes         uint64
	leased        uint64
	delayed       uint64
	maxDeliveries uint64 // 0: no limit
	deadLetter    string // the dead-letter topic ("" when maxDeliveries is 0)
}

func (t topic) ready() uint64 { return t.count - t.leased - t.delayed }

func encodeTopic(t topic) []byte {
	b := appendString(nil, t.name)
	for _, v := range []uint64{t.tail, t.count, t.bytes, t.leased, t.delayed, t.maxDeliveries} {
		b = putU64(b, v)
	}
	return appendString(b, t.deadLetter)
}

func decodeTopic(b []byte) (topic, error) {
	r := reader{b: b}
	var t topic
	t.name = string(r.bytesN(r.uvarint("name length"), "name"))
	t.tail, t.count, t.bytes = r.u64("tail"), r.u64("count"), r.u64("bytes")
	t.leased, t.delayed, t.maxDeliveries = r.u64("leased"), r.u64("delayed"), r.u64("max deliveries")
	t.deadLetter = string(r.bytesN(r.uvarint("dead letter length"), "dead letter"))
	if err := r.done("topic"); err != nil {
		return topic{}, err
	}
	if t.count > t.tail || t.leased > t.count || t.delayed > t.count-t.leased {
		return topic{}, fmt.Errorf("counts out of order: tail %d count %d leased %d delayed %d", t.tail, t.count, t.leased, t.delayed)
	}
	return t, nil
}
