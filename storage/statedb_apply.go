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
	Message    string // set for a successful pop or receive
	HasMessage bool
	StaleSeq   bool // seq lower than the session's last seq: not executed
	// Receipt and Deliveries are a successful receive's.
	Receipt    string
	Deliveries uint64
	// Refusal says why a command changed nothing beyond a plain no.
	Refusal Refusal
	// Waiting: a Wait command found no ready message and changed nothing.
	Waiting bool
}

// Refusal is a reason a command was refused at apply time.
type Refusal uint8

const (
	RefusalNone Refusal = iota
	// RefusalStaleReceipt: the receipt's lease ended, or its message was
	// acked, dead-lettered or delivered again (or it never existed).
	RefusalStaleReceipt
	// RefusalNoDeadLetter: a topic named a dead-letter topic that does
	// not exist.
	RefusalNoDeadLetter
)

// Applied is the outcome of one applied EntryNormal.
type Applied struct {
	Index      uint64
	ProposalID uint64
	Result     Result
	Duplicate  bool // answered from the session table, not executed again
	// Readied names the topics that gained a ready message while this
	// entry applied (a put, a nack, an ended lease or delay, a dead
	// letter), each once, in the order they did.
	Readied []string
}

// Apply applies committed entries in the open group transaction, with the
// applied index, and commits it when the group is full or old enough
// (StateOptions); the entries are durable only then (DurableAppliedIndex).
// Entries at or below AppliedIndex() are skipped, so replaying the log
// after a crash never applies anything twice. EntryNoop and EntryConfChange entries only
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
		case raftlog.EntryNoop, raftlog.EntryConfChange:
			// A membership change is the broker's (raft.db records it).
			// Here it only advances the applied index.
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
			return nil, s.fail(fmt.Errorf("%w: begin a transaction on %s: %w", ErrWriteFailed, s.path, err))
		}
		s.tx, s.groupEntries, s.groupBytes, s.groupSince = tx, 0, 0, time.Now()
	}
	var out []Applied
	err := guard(s.path, func() error {
		a := applier{tx: s.tx, path: s.path, maxSessions: uint64(s.opts.MaxSessions)}
		clock, err := getCounter(s.tx, s.path, keyClock)
		if err != nil {
			return err
		}
		a.clock = clock
		for i, e := range ents {
			if e.Type != raftlog.EntryNormal {
				continue
			}
			a.readied = nil
			ap, err := a.apply(e.Index, cmds[i])
			if err != nil {
				return err
			}
			ap.Readied = a.readied
			out = append(out, ap)
		}
		if a.clock != clock {
			if err := putCounter(s.tx, keyClock, a.clock); err != nil {
				return err
			}
		}
		if err := putCounter(s.tx, keyApplied, ents[len(ents)-1].Index); err != nil {
			return err
		}
		s.noteExpiry(s.tx)
		return nil
	})
	if err != nil {
		// The transaction may hold part of this batch: drop the group.
		s.rollbackLocked()
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("storage: apply entries %d..%d to %s: %w", ents[0].Index, ents[len(ents)-1].Index, s.path, err)
		}
		return nil, s.fail(fmt.Errorf("%w: %w", ErrWriteFailed, err))
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
	clock       uint64   // the state machine's clock (Unix ms); only moves forward
	readied     []string // topics that gained a ready message in this entry
}

// apply runs one command through the session table (Raft dissertation
// §6.3): a repeated seq returns the stored result, an older seq is not
// executed, a newer one executes and is stored.
func (a *applier) apply(index uint64, c Command) (Applied, error) {
	ap := Applied{Index: index, ProposalID: c.ProposalID}
	if c.TimeMs > a.clock {
		a.clock = c.TimeMs
		if err := a.expireDue(); err != nil {
			return ap, err
		}
	}
	if c.ClientID == "" {
		res, err := a.execute(index, c)
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
	if ap.Result, err = a.execute(index, c); err != nil {
		return ap, err
	}
	if ap.Result.Waiting {
		// Nothing changed; the broker proposes the same seq again when a
		// message is ready, and that one must execute.
		return ap, nil
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

// queueFillPercent is how full bbolt fills a queue or ready page before
// splitting it. Their keys almost only grow (puts append at the tail, pops
// delete at the head; only a nacked or expired message goes back to an
// older place in the ready bucket), so a split page rarely takes another
// key: full pages keep state.db near the bytes queued instead of twice that
// (decision 15).
const queueFillPercent = 1.0

// execute runs c against the topic store.
func (a *applier) execute(index uint64, c Command) (Result, error) {
	if c.Op == OpTick {
		return Result{Success: true}, nil
	}
	if c.Op == OpCreateTopic {
		if a.tx.Bucket(bucketTopicNames).Get([]byte(c.Topic)) != nil {
			return Result{}, nil
		}
		if c.DeadLetter != "" && a.tx.Bucket(bucketTopicNames).Get([]byte(c.DeadLetter)) == nil {
			return Result{Refusal: RefusalNoDeadLetter}, nil
		}
		return Result{Success: true}, a.createTopic(c)
	}
	ts, found, err := a.openTopic(c.Topic)
	if err != nil {
		return Result{}, err
	}
	if !found {
		if c.Op == OpAck || c.Op == OpNack || c.Op == OpExtend {
			return Result{Refusal: RefusalStaleReceipt}, nil
		}
		return Result{}, nil
	}
	switch c.Op {
	case OpPut:
		return Result{Success: true}, a.appendMessage(ts, c.Message)
	case OpPop:
		return a.pop(ts, c.Wait)
	case OpReceive:
		return a.receive(index, ts, c)
	case OpAck, OpNack, OpExtend:
		return a.settle(ts, c)
	default:
		panic(fmt.Sprintf("storage: execute: op %d passed DecodeCommand", c.Op))
	}
}

// topicState is an open topic inside the write transaction.
type topicState struct {
	key   []byte // creation seq
	seq   uint64
	t     topic
	queue *bbolt.Bucket
	ready *bbolt.Bucket
}

func (a *applier) openTopic(name string) (*topicState, bool, error) {
	k := a.tx.Bucket(bucketTopicNames).Get([]byte(name))
	if k == nil {
		return nil, false, nil
	}
	if len(k) != 8 {
		return nil, false, corruptError(a.path, fmt.Sprintf("topic %q has a %d-byte creation sequence", name, len(k)))
	}
	return a.openTopicKey(append([]byte(nil), k...))
}

func (a *applier) openTopicKey(key []byte) (*topicState, bool, error) {
	t, err := a.getTopic(key)
	if err != nil {
		return nil, false, err
	}
	ts := &topicState{key: key, seq: beU64(key), t: t, queue: a.tx.Bucket(bucketQueues).Bucket(key), ready: a.tx.Bucket(bucketReady).Bucket(key)}
	if ts.queue == nil || ts.ready == nil {
		return nil, false, corruptError(a.path, fmt.Sprintf("topic %q has no queue or ready bucket", t.name))
	}
	ts.queue.FillPercent, ts.ready.FillPercent = queueFillPercent, queueFillPercent
	return ts, true, nil
}

func (a *applier) saveTopic(ts *topicState) error {
	return putSealedKey(a.tx.Bucket(bucketTopics), ts.key, encodeTopic(ts.t))
}

// noteReadied records that ts gained a ready message.
func (a *applier) noteReadied(name string) {
	for _, n := range a.readied {
		if n == name {
			return
		}
	}
	a.readied = append(a.readied, name)
}

// appendMessage puts msg at the end of ts, ready.
func (a *applier) appendMessage(ts *topicState, msg string) error {
	key := indexKey(ts.t.tail)
	if err := putSealedKey(ts.queue, key, []byte(msg)); err != nil {
		return err
	}
	if err := ts.ready.Put(key, []byte{}); err != nil {
		return err
	}
	ts.t.tail++
	ts.t.count++
	ts.t.bytes += uint64(len(msg))
	a.noteReadied(ts.t.name)
	return a.saveTopic(ts)
}

// firstReady returns the oldest ready message's sequence key.
func firstReady(ts *topicState) []byte {
	k, _ := ts.ready.Cursor().First()
	if k == nil {
		return nil
	}
	return append([]byte(nil), k...)
}

func (a *applier) readMessage(ts *topicState, key []byte) (string, error) {
	msg, ok, err := getSealedKey(ts.queue, key)
	if err != nil || !ok {
		return "", corruptError(a.path, fmt.Sprintf("topic %q message %d: missing or damaged (%v)", ts.t.name, beU64(key), err))
	}
	return string(msg), nil
}

// removeMessage deletes message key (and its delivery record) from ts;
// the caller fixes the ready, leased and delayed bookkeeping.
func (a *applier) removeMessage(ts *topicState, key []byte, msg string) error {
	if err := ts.queue.Delete(key); err != nil {
		return err
	}
	if err := a.tx.Bucket(bucketDeliveries).Delete(deliveryKey(ts.seq, beU64(key))); err != nil {
		return err
	}
	ts.t.count--
	ts.t.bytes -= uint64(len(msg))
	return nil
}

// pop removes and returns the oldest ready message (the course's GET).
func (a *applier) pop(ts *topicState, wait bool) (Result, error) {
	key := firstReady(ts)
	if key == nil {
		return Result{Waiting: wait}, nil
	}
	msg, err := a.readMessage(ts, key)
	if err != nil {
		return Result{}, err
	}
	if err := ts.ready.Delete(key); err != nil {
		return Result{}, err
	}
	if err := a.removeMessage(ts, key, msg); err != nil {
		return Result{}, err
	}
	return Result{Success: true, Message: msg, HasMessage: true}, a.saveTopic(ts)
}

func (a *applier) createTopic(c Command) error {
	seq, err := getCounter(a.tx, a.path, keyNextTopic)
	if err != nil {
		return err
	}
	key := indexKey(seq)
	t := topic{name: c.Topic, maxDeliveries: c.MaxDeliveries, deadLetter: c.DeadLetter}
	if err := putSealedKey(a.tx.Bucket(bucketTopics), key, encodeTopic(t)); err != nil {
		return err
	}
	if err := a.tx.Bucket(bucketTopicNames).Put([]byte(c.Topic), key); err != nil {
		return err
	}
	if _, err := a.tx.Bucket(bucketQueues).CreateBucket(key); err != nil {
		return err
	}
	if _, err := a.tx.Bucket(bucketReady).CreateBucket(key); err != nil {
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
