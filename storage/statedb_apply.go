package storage

import (
	"errors"
	"fmt"
	"time"

	"github.com/raftmq/raftmq/raftlog"
	"go.etcd.io/bbolt"
)

// Result is the outcome of one command.
type Result struct {
	Success    bool
	Message    string // set for a successful pop
	HasMessage bool
	StaleSeq   bool // seq lower than the session's last seq: not executed
}

// Applied is the outcome of one applied EntryNormal.
type Applied struct {
	Index      uint64
	ProposalID uint64
	Result     Result
	Duplicate  bool // answered from the session table, not executed again
}

// Apply applies committed entries in the open group transaction, with the
// applied index, and commits it when the group is full or old enough
// (StateOptions); the entries are durable only then (DurableAppliedIndex).
// Entries at or below AppliedIndex() are skipped, so replaying the log
// after a crash never applies anything twice. EntryNoop entries only
// advance the applied index. It returns one Applied per EntryNormal
// applied, in order.
//
// An EntryNormal that does not decode (or an unknown entry type) returns an
// error wrapping ErrBadCommand and nothing is applied. A write error drops
// the whole pending group and is sticky (ErrWriteFailed): the caller must
// stop. Results depend only on state.db and the entries.
func (s *StateDB) Apply(ents []raftlog.Entry) ([]Applied, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return nil, s.failed
	}
	for len(ents) > 0 && ents[0].Index <= s.applied {
		ents = ents[1:]
	}
	if len(ents) == 0 {
		return nil, nil
	}
	for i, e := range ents {
		if want := s.applied + 1 + uint64(i); e.Index != want {
			panic(fmt.Sprintf("storage: Apply: entry %d where %d was expected (applied %d)", e.Index, want, s.applied))
		}
	}
	cmds := make([]Command, len(ents))
	var bytes uint64
	for i, e := range ents {
		switch e.Type {
		case raftlog.EntryNoop:
		case raftlog.EntryNormal:
			c, err := DecodeCommand(e.Data)
			if err != nil {
				return nil, fmt.Errorf("storage: apply entry %d to %s: %w", e.Index, s.path, err)
			}
			cmds[i] = c
			bytes += uint64(len(e.Data))
		default:
			return nil, fmt.Errorf("%w: apply entry %d to %s: unknown entry type %d", ErrBadCommand, e.Index, s.path, e.Type)
		}
	}
	if s.tx == nil {
		tx, err := s.db.Begin(true)
		if err != nil {
			s.failed = fmt.Errorf("%w: begin a transaction on %s: %w", ErrWriteFailed, s.path, err)
			return nil, s.failed
		}
		s.tx, s.groupEntries, s.groupBytes, s.groupSince = tx, 0, 0, time.Now()
	}
	var out []Applied
	err := guard(s.path, func() error {
		a := applier{tx: s.tx, path: s.path, maxSessions: uint64(s.opts.MaxSessions)}
		for i, e := range ents {
			if e.Type != raftlog.EntryNormal {
				continue
			}
			ap, err := a.apply(e.Index, cmds[i])
			if err != nil {
				return err
			}
			out = append(out, ap)
		}
		return putCounter(s.tx, keyApplied, ents[len(ents)-1].Index)
	})
	if err != nil {
		// The transaction may hold part of this batch: drop the group.
		s.rollbackLocked()
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("storage: apply entries %d..%d to %s: %w", ents[0].Index, ents[len(ents)-1].Index, s.path, err)
		}
		s.failed = fmt.Errorf("%w: %w", ErrWriteFailed, err)
		return nil, s.failed
	}
	s.applied = ents[len(ents)-1].Index
	s.groupEntries += len(ents)
	s.groupBytes += bytes
	if s.groupEntries >= s.opts.GroupEntries || s.groupBytes >= s.opts.GroupBytes || time.Since(s.groupSince) >= s.opts.GroupDelay {
		if err := s.commitLocked(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// applier applies commands inside one write transaction.
type applier struct {
	tx          *bbolt.Tx
	path        string
	maxSessions uint64
}

// apply runs one command through the session table (Raft dissertation
// §6.3): a repeated seq returns the stored result, an older seq is not
// executed, a newer one executes and is stored.
func (a *applier) apply(index uint64, c Command) (Applied, error) {
	ap := Applied{Index: index, ProposalID: c.ProposalID}
	if c.ClientID == "" {
		res, err := a.execute(c)
		ap.Result = res
		return ap, err
	}
	sess, found, err := a.getSession(c.ClientID)
	if err != nil {
		return ap, err
	}
	if found && c.Seq == sess.lastSeq {
		ap.Result, ap.Duplicate = sess.result, true
		return ap, a.putSession(c.ClientID, sess, session{lastSeq: sess.lastSeq, lastUse: index, result: sess.result})
	}
	if found && c.Seq < sess.lastSeq {
		ap.Result = Result{StaleSeq: true}
		return ap, nil
	}
	if ap.Result, err = a.execute(c); err != nil {
		return ap, err
	}
	if !found {
		if err := a.makeRoomForSession(); err != nil {
			return ap, err
		}
	}
	next := session{lastSeq: c.Seq, lastUse: index, result: ap.Result}
	if !found {
		return ap, a.putNewSession(c.ClientID, next)
	}
	return ap, a.putSession(c.ClientID, sess, next)
}

// queueFillPercent is how full bbolt fills a queue page before splitting
// it. Message keys only ever grow (puts append at the tail, pops delete at
// the head), so a split page never takes another key: full pages keep
// state.db near the bytes queued instead of twice that (decision 15).
const queueFillPercent = 1.0

// execute runs c against the topic store.
func (a *applier) execute(c Command) (Result, error) {
	names := a.tx.Bucket(bucketTopicNames)
	seqKey := names.Get([]byte(c.Topic))
	if c.Op == OpCreateTopic {
		if seqKey != nil {
			return Result{}, nil
		}
		return Result{Success: true}, a.createTopic(c.Topic)
	}
	if seqKey == nil {
		return Result{}, nil
	}
	seqKey = append([]byte(nil), seqKey...)
	t, err := a.getTopic(seqKey)
	if err != nil {
		return Result{}, err
	}
	q := a.tx.Bucket(bucketQueues).Bucket(seqKey)
	if q == nil {
		return Result{}, corruptError(a.path, fmt.Sprintf("topic %q has no queue bucket", t.name))
	}
	q.FillPercent = queueFillPercent
	switch c.Op {
	case OpPut:
		if err := putSealedKey(q, indexKey(t.tail), []byte(c.Message)); err != nil {
			return Result{}, err
		}
		t.tail++
		t.bytes += uint64(len(c.Message))
	case OpPop:
		if t.head == t.tail {
			return Result{}, nil
		}
		key := indexKey(t.head)
		msg, ok, err := getSealedKey(q, key)
		if err != nil || !ok {
			return Result{}, corruptError(a.path, fmt.Sprintf("topic %q message %d: missing or damaged (%v)", t.name, t.head, err))
		}
		if err := q.Delete(key); err != nil {
			return Result{}, err
		}
		t.head++
		t.bytes -= uint64(len(msg))
		if err := putSealedKey(a.tx.Bucket(bucketTopics), seqKey, encodeTopic(t)); err != nil {
			return Result{}, err
		}
		return Result{Success: true, Message: string(msg), HasMessage: true}, nil
	default:
		panic(fmt.Sprintf("storage: execute: op %d passed DecodeCommand", c.Op))
	}
	return Result{Success: true}, putSealedKey(a.tx.Bucket(bucketTopics), seqKey, encodeTopic(t))
}

func (a *applier) createTopic(name string) error {
	seq, err := getCounter(a.tx, a.path, keyNextTopic)
	if err != nil {
		return err
	}
	key := indexKey(seq)
	if err := putSealedKey(a.tx.Bucket(bucketTopics), key, encodeTopic(topic{name: name})); err != nil {
		return err
	}
	if err := a.tx.Bucket(bucketTopicNames).Put([]byte(name), key); err != nil {
		return err
	}
	if _, err := a.tx.Bucket(bucketQueues).CreateBucket(key); err != nil {
		return err
	}
	return putCounter(a.tx, keyNextTopic, seq+1)
}

func (a *applier) getTopic(seqKey []byte) (topic, error) {
	v, ok, err := getSealedKey(a.tx.Bucket(bucketTopics), seqKey)
	if err != nil || !ok {
		return topic{}, corruptError(a.path, fmt.Sprintf("topic record %x missing or damaged (%v)", seqKey, err))
	}
	t, err := decodeTopic(v)
	if err != nil {
		return topic{}, corruptError(a.path, fmt.Sprintf("topic record %x: %v", seqKey, err))
	}
	return t, nil
}
