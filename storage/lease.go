package storage

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// Leased delivery (decision 16). A message is in one of three states:
// ready (in its topic's ready bucket), leased (a receive handed it out
// until a time) or delayed (a nack made it wait until a time). A leased or
// delayed message has an entry in the expiry index, ordered by that time,
// so the ones due are found without scanning; a message delivered at least
// once has a delivery record with its count and current delivery. Messages
// never move in their queue bucket, so a message that becomes ready again
// is back in its original place: before everything put after it.

type deliveryState uint8

const (
	stateReady   deliveryState = 0
	stateLeased  deliveryState = 1
	stateDelayed deliveryState = 2
)

// delivery is a message's delivery record.
type delivery struct {
	state      deliveryState
	deliveries uint64 // deliveries so far (1 after the first receive)
	current    uint64 // log index of the receive that made the current delivery
	until      uint64 // leased or delayed: the clock (Unix ms) at which it ends
}

func deliveryKey(topicSeq, msgSeq uint64) []byte { return putU64(putU64(nil, topicSeq), msgSeq) }

func expiryKey(until, topicSeq, msgSeq uint64) []byte {
	return putU64(putU64(putU64(make([]byte, 0, 24), until), topicSeq), msgSeq)
}

func encodeDelivery(d delivery) []byte {
	return putU64(putU64(putU64([]byte{byte(d.state)}, d.deliveries), d.current), d.until)
}

func decodeDelivery(b []byte) (delivery, error) {
	r := reader{b: b}
	d := delivery{state: deliveryState(r.byte1("state")), deliveries: r.u64("deliveries"), current: r.u64("current"), until: r.u64("until")}
	if err := r.done("delivery"); err != nil {
		return delivery{}, err
	}
	if d.state > stateDelayed {
		return delivery{}, fmt.Errorf("unknown delivery state %d", d.state)
	}
	return d, nil
}

func (a *applier) getDelivery(topicSeq, msgSeq uint64) (delivery, bool, error) {
	v, ok, err := getSealedKey(a.tx.Bucket(bucketDeliveries), deliveryKey(topicSeq, msgSeq))
	if err != nil || !ok {
		if err != nil {
			err = corruptError(a.path, fmt.Sprintf("delivery record %d/%d: %v", topicSeq, msgSeq, err))
		}
		return delivery{}, false, err
	}
	d, err := decodeDelivery(v)
	if err != nil {
		return delivery{}, false, corruptError(a.path, fmt.Sprintf("delivery record %d/%d: %v", topicSeq, msgSeq, err))
	}
	return d, true, nil
}

func (a *applier) putDelivery(topicSeq, msgSeq uint64, d delivery) error {
	return putSealedKey(a.tx.Bucket(bucketDeliveries), deliveryKey(topicSeq, msgSeq), encodeDelivery(d))
}

// after is the clock plus ms, saturating.
func (a *applier) after(ms uint64) uint64 {
	if a.clock+ms < a.clock {
		return ^uint64(0)
	}
	return a.clock + ms
}

// receive leases the oldest ready message of ts for c.LeaseMs.
func (a *applier) receive(index uint64, ts *topicState, c Command) (Result, error) {
	key := firstReady(ts)
	if key == nil {
		return Result{Waiting: c.Wait}, nil
	}
	msgSeq := beU64(key)
	msg, err := a.readMessage(ts, key)
	if err != nil {
		return Result{}, err
	}
	d, _, err := a.getDelivery(ts.seq, msgSeq)
	if err != nil {
		return Result{}, err
	}
	d = delivery{state: stateLeased, deliveries: d.deliveries + 1, current: index, until: a.after(c.LeaseMs)}
	if err := ts.ready.Delete(key); err != nil {
		return Result{}, err
	}
	if err := a.putDelivery(ts.seq, msgSeq, d); err != nil {
		return Result{}, err
	}
	if err := a.tx.Bucket(bucketExpiry).Put(expiryKey(d.until, ts.seq, msgSeq), []byte{}); err != nil {
		return Result{}, err
	}
	ts.t.leased++
	rc := Receipt{Topic: ts.seq, Message: msgSeq, Delivery: index}
	return Result{Success: true, Message: msg, HasMessage: true, Receipt: rc.String(), Deliveries: d.deliveries}, a.saveTopic(ts)
}

// settle runs an ACK, NACK or EXTEND: only with the receipt of a current
// lease; anything else is a stale receipt and changes nothing.
func (a *applier) settle(ts *topicState, c Command) (Result, error) {
	stale := Result{Refusal: RefusalStaleReceipt}
	rc, err := ParseReceipt(c.Receipt)
	if err != nil || rc.Topic != ts.seq {
		return stale, nil
	}
	d, found, err := a.getDelivery(rc.Topic, rc.Message)
	if err != nil {
		return Result{}, err
	}
	// An ended lease was expired when the clock passed it (expireDue runs
	// before every command), so a current lease is still leased here.
	if !found || d.state != stateLeased || d.current != rc.Delivery {
		return stale, nil
	}
	expiry := a.tx.Bucket(bucketExpiry)
	if err := expiry.Delete(expiryKey(d.until, rc.Topic, rc.Message)); err != nil {
		return Result{}, err
	}
	key := indexKey(rc.Message)
	switch c.Op {
	case OpAck:
		msg, err := a.readMessage(ts, key)
		if err != nil {
			return Result{}, err
		}
		ts.t.leased--
		if err := a.removeMessage(ts, key, msg); err != nil {
			return Result{}, err
		}
	case OpNack:
		ts.t.leased--
		if err := a.release(ts, rc.Message, d, c.DelayMs); err != nil {
			return Result{}, err
		}
	case OpExtend:
		d.until = a.after(c.LeaseMs)
		if err := expiry.Put(expiryKey(d.until, rc.Topic, rc.Message), []byte{}); err != nil {
			return Result{}, err
		}
		if err := a.putDelivery(rc.Topic, rc.Message, d); err != nil {
			return Result{}, err
		}
	}
	return Result{Success: true}, a.saveTopic(ts)
}

// release ends a delivery (the caller has taken the message out of the
// leased count and the expiry index): after its topic's last allowed
// delivery it is dead-lettered, otherwise it is delayed for delayMs or
// ready at once.
func (a *applier) release(ts *topicState, msgSeq uint64, d delivery, delayMs uint64) error {
	if ts.t.maxDeliveries > 0 && d.deliveries >= ts.t.maxDeliveries {
		return a.deadLetter(ts, msgSeq)
	}
	if delayMs > 0 {
		d.state, d.until = stateDelayed, a.after(delayMs)
		ts.t.delayed++
		if err := a.tx.Bucket(bucketExpiry).Put(expiryKey(d.until, ts.seq, msgSeq), []byte{}); err != nil {
			return err
		}
		return a.putDelivery(ts.seq, msgSeq, d)
	}
	return a.makeReady(ts, msgSeq, d)
}

func (a *applier) makeReady(ts *topicState, msgSeq uint64, d delivery) error {
	d.state, d.until = stateReady, 0
	if err := ts.ready.Put(indexKey(msgSeq), []byte{}); err != nil {
		return err
	}
	a.noteReadied(ts.t.name)
	return a.putDelivery(ts.seq, msgSeq, d)
}

// deadLetter moves a message from ts to the end of its dead-letter topic.
func (a *applier) deadLetter(ts *topicState, msgSeq uint64) error {
	key := indexKey(msgSeq)
	msg, err := a.readMessage(ts, key)
	if err != nil {
		return err
	}
	if err := a.removeMessage(ts, key, msg); err != nil {
		return err
	}
	if err := a.saveTopic(ts); err != nil {
		return err
	}
	dl, found, err := a.openTopic(ts.t.deadLetter)
	if err != nil {
		return err
	}
	if !found {
		// Topics are never deleted and creation checks the dead-letter
		// topic exists.
		return corruptError(a.path, fmt.Sprintf("topic %q: dead-letter topic %q does not exist", ts.t.name, ts.t.deadLetter))
	}
	return a.appendMessage(dl, msg)
}

// expireDue ends every lease and delay whose time is not after the clock,
// in the order of the expiry index (time, topic, message).
func (a *applier) expireDue() error {
	expiry := a.tx.Bucket(bucketExpiry)
	for {
		k, _ := expiry.Cursor().First()
		if k == nil {
			return nil
		}
		if len(k) != 24 {
			return corruptError(a.path, fmt.Sprintf("expiry index key %x is %d bytes, want 24", k, len(k)))
		}
		until, topicSeq, msgSeq := beU64(k), beU64(k[8:]), beU64(k[16:])
		if until > a.clock {
			return nil
		}
		if err := expiry.Delete(append([]byte(nil), k...)); err != nil {
			return err
		}
		if err := a.expireOne(until, topicSeq, msgSeq); err != nil {
			return err
		}
	}
}

func (a *applier) expireOne(until, topicSeq, msgSeq uint64) error {
	d, found, err := a.getDelivery(topicSeq, msgSeq)
	if err != nil {
		return err
	}
	if !found || d.state == stateReady || d.until != until {
		return corruptError(a.path, fmt.Sprintf("expiry index names %d/%d at %d but its delivery record is %+v (found %v)", topicSeq, msgSeq, until, d, found))
	}
	ts, _, err := a.openTopicKey(indexKey(topicSeq))
	if err != nil {
		return err
	}
	if d.state == stateDelayed {
		ts.t.delayed--
		if err := a.makeReady(ts, msgSeq, d); err != nil {
			return err
		}
	} else {
		ts.t.leased--
		if err := a.release(ts, msgSeq, d, 0); err != nil {
			return err
		}
	}
	return a.saveTopic(ts)
}

// TopicInfo is one topic's details.
type TopicInfo struct {
	Name          string `json:"name"`
	Ready         uint64 `json:"ready"`
	Leased        uint64 `json:"leased"`
	Delayed       uint64 `json:"delayed"`
	MaxDeliveries uint64 `json:"max_deliveries"`
	DeadLetter    string `json:"dead_letter,omitempty"`
}

// TopicInfo returns topic name's details (false if it does not exist).
func (s *StateDB) TopicInfo(name string) (TopicInfo, bool, error) {
	var info TopicInfo
	var found bool
	err := s.view(func(tx *bbolt.Tx) error {
		k := tx.Bucket(bucketTopicNames).Get([]byte(name))
		if k == nil {
			return nil
		}
		a := applier{tx: tx, path: s.path}
		t, err := a.getTopic(k)
		if err != nil {
			return err
		}
		found = true
		info = TopicInfo{Name: t.name, Ready: t.ready(), Leased: t.leased, Delayed: t.delayed, MaxDeliveries: t.maxDeliveries, DeadLetter: t.deadLetter}
		return nil
	})
	return info, found, err
}

// NextExpiry returns the earliest time (Unix ms) at which a lease or delay
// ends in the applied state, and false when none is pending. The leader
// proposes an OpTick stamped with its clock once its clock passes it. It
// never waits: it reads what the last Apply recorded.
func (s *StateDB) NextExpiry() (uint64, bool, error) {
	e := s.expiry.Load()
	return e.until, e.ok, e.err
}

// Clock returns the state machine's clock (Unix ms): the latest time a
// leader stamped on an applied entry.
func (s *StateDB) Clock() (uint64, error) {
	var c uint64
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		c, err = getCounter(tx, s.path, keyClock)
		return err
	})
	return c, err
}
