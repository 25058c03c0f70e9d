package storage

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
	"go.etcd.io/bbolt"
)

// Leased delivery, deterministic: every entry carries the leader's time
// (TimeMs), and nothing here reads a clock.

func at(ms uint64, c Command) Command { c.TimeMs = ms; return c }
func recv(topic string, leaseMs uint64) Command {
	return Command{Op: OpReceive, Topic: topic, LeaseMs: leaseMs}
}
func ack(topic, receipt string) Command { return Command{Op: OpAck, Topic: topic, Receipt: receipt} }
func nack(topic, receipt string, delayMs uint64) Command {
	return Command{Op: OpNack, Topic: topic, Receipt: receipt, DelayMs: delayMs}
}
func extend(topic, receipt string, leaseMs uint64) Command {
	return Command{Op: OpExtend, Topic: topic, Receipt: receipt, LeaseMs: leaseMs}
}
func tick(ms uint64) Command { return Command{Op: OpTick, TimeMs: ms} }
func createDL(topic string, max uint64, dl string) Command {
	return Command{Op: OpCreateTopic, Topic: topic, MaxDeliveries: max, DeadLetter: dl}
}

var stale = Result{Refusal: RefusalStaleReceipt}

// leaseRun applies commands one entry each from index 1 and returns the
// results.
type leaseRun struct {
	t    *testing.T
	s    *StateDB
	next uint64
}

func newLeaseRun(t *testing.T) *leaseRun {
	return &leaseRun{t: t, s: openTestStateDB(t, filepath.Join(t.TempDir(), "state.db"), 10), next: 1}
}

func (r *leaseRun) do(c Command) Applied {
	r.t.Helper()
	out, err := r.s.Apply([]raftlog.Entry{cmdEntry(r.next, c)})
	if err != nil || len(out) != 1 {
		r.t.Fatalf("apply %+v at %d: %+v, %v", c, r.next, out, err)
	}
	r.next++
	return out[0]
}

// want applies c and checks its result.
func (r *leaseRun) want(c Command, want Result) Result {
	r.t.Helper()
	got := r.do(c).Result
	if got != want {
		r.t.Fatalf("entry %d %v %+v:\n got  %+v\n want %+v", r.next-1, c.Op, c, got, want)
	}
	return got
}

// received applies a receive and checks message and delivery count; it
// returns the receipt.
func (r *leaseRun) received(c Command, msg string, deliveries uint64) string {
	r.t.Helper()
	got := r.do(c).Result
	if !got.Success || got.Message != msg || got.Deliveries != deliveries || got.Receipt == "" {
		r.t.Fatalf("entry %d receive: got %+v, want %q delivery %d", r.next-1, got, msg, deliveries)
	}
	return got.Receipt
}

func (r *leaseRun) info(topic string, want TopicInfo) {
	r.t.Helper()
	got, found, err := r.s.TopicInfo(topic)
	if err != nil || !found || got != want {
		r.t.Fatalf("TopicInfo(%s) = %+v, %v, %v; want %+v", topic, got, found, err, want)
	}
}

func TestLeaseExpiryRedeliversInPlace(t *testing.T) {
	r := newLeaseRun(t)
	r.want(at(1000, create("q")), ok)
	r.want(at(1000, put("q", "m1")), ok)
	r.want(at(1000, put("q", "m2")), ok)
	r1 := r.received(at(1000, recv("q", 100)), "m1", 1)
	r.received(at(1010, recv("q", 100)), "m2", 1)
	r.want(at(1010, pop("q")), no) // both leased: invisible to GET too
	r.info("q", TopicInfo{Name: "q", Leased: 2})
	if until, ok, _ := r.s.NextExpiry(); !ok || until != 1100 {
		t.Fatalf("NextExpiry = %d, %v; want 1100", until, ok)
	}
	r.want(tick(1099), ok)
	r.info("q", TopicInfo{Name: "q", Leased: 2})
	r.want(at(1050, put("q", "m3")), ok) // a stamp behind the clock does not move it back
	a := r.do(tick(1100))
	if !reflect.DeepEqual(a.Readied, []string{"q"}) {
		t.Fatalf("Readied = %v, want [q]", a.Readied)
	}
	r.info("q", TopicInfo{Name: "q", Ready: 2, Leased: 1})
	// m1 is back in its place: before m3, which was put after it.
	r2 := r.received(at(1100, recv("q", 100)), "m1", 2)
	if r2 == r1 {
		t.Fatalf("a redelivery reused receipt %s", r1)
	}
	r.want(at(1100, ack("q", r1)), stale)
	r.want(at(1100, ack("q", r2)), ok)
	if c, _ := r.s.Clock(); c != 1100 {
		t.Fatalf("Clock = %d, want 1100", c)
	}
}

func TestNackRedeliversInPlaceAndDelays(t *testing.T) {
	r := newLeaseRun(t)
	r.want(at(1, create("q")), ok)
	for _, m := range []string{"a", "b", "c"} {
		r.want(at(1, put("q", m)), ok)
	}
	ra := r.received(at(1, recv("q", 1000)), "a", 1)
	rb := r.received(at(1, recv("q", 1000)), "b", 1)
	r.want(at(2, nack("q", rb, 0)), ok)
	r.want(at(2, pop("q")), got("b")) // b is back before c
	r.want(at(3, nack("q", ra, 500)), ok)
	r.info("q", TopicInfo{Name: "q", Ready: 1, Delayed: 1})
	r.want(at(3, nack("q", ra, 0)), stale) // a nacked receipt is spent
	r.received(at(4, recv("q", 1000)), "c", 1)
	r.want(at(502, recv("q", 1000)), no) // a waits until 503
	r.want(tick(503), ok)
	r.info("q", TopicInfo{Name: "q", Ready: 1, Leased: 1})
	r.received(at(503, recv("q", 1000)), "a", 2)
}

func TestExtend(t *testing.T) {
	r := newLeaseRun(t)
	r.want(at(0, create("q")), ok)
	r.want(at(0, put("q", "m")), ok)
	rc := r.received(at(1000, recv("q", 100)), "m", 1)
	r.want(at(1050, extend("q", rc, 200)), ok) // now ends at 1250
	r.want(tick(1200), ok)
	r.info("q", TopicInfo{Name: "q", Leased: 1})
	r.want(at(1249, ack("q", rc)), ok)
	r.info("q", TopicInfo{Name: "q"})
	r.want(at(1249, extend("q", rc, 200)), stale)
}

// TestFencingOrders applies every order of three events on a message
// leased with receipt R1 that ends at 1100: A (ack R1), E (the clock
// passes 1100), D (a receive, which redelivers it if it is ready). Whichever
// comes first in the log wins.
func TestFencingOrders(t *testing.T) {
	orders := []struct {
		order string
		want  map[byte]string // event -> "ok", "stale", "none" (receive found nothing), "redelivered"
	}{
		{"AED", map[byte]string{'A': "ok", 'E': "ok", 'D': "none"}},
		{"ADE", map[byte]string{'A': "ok", 'D': "none", 'E': "ok"}},
		{"EAD", map[byte]string{'E': "ok", 'A': "stale", 'D': "redelivered"}},
		{"EDA", map[byte]string{'E': "ok", 'D': "redelivered", 'A': "stale"}},
		{"DAE", map[byte]string{'D': "none", 'A': "ok", 'E': "ok"}},
		{"DEA", map[byte]string{'D': "none", 'E': "ok", 'A': "stale"}},
	}
	for _, tc := range orders {
		t.Run(tc.order, func(t *testing.T) {
			r := newLeaseRun(t)
			r.want(at(1000, create("q")), ok)
			r.want(at(1000, put("q", "m")), ok)
			r1 := r.received(at(1000, recv("q", 100)), "m", 1)
			now := uint64(1000)
			var r2 string
			for _, ev := range []byte(tc.order) {
				switch ev {
				case 'A':
					got := r.do(at(now, ack("q", r1))).Result
					if (tc.want['A'] == "ok") != got.Success || (tc.want['A'] == "stale") != (got.Refusal == RefusalStaleReceipt) {
						t.Fatalf("ack: %+v, want %s", got, tc.want['A'])
					}
				case 'E':
					now = 1100
					r.want(tick(now), ok)
				case 'D':
					got := r.do(at(now, recv("q", 100))).Result
					switch tc.want['D'] {
					case "none":
						if got != no {
							t.Fatalf("receive: %+v, want nothing", got)
						}
					case "redelivered":
						if !got.Success || got.Deliveries != 2 || got.Receipt == r1 {
							t.Fatalf("receive: %+v, want the second delivery", got)
						}
						r2 = got.Receipt
					}
				}
			}
			// The end state agrees: acked means gone; otherwise the message
			// is still held and a later receipt, if any, still works.
			info, _, _ := r.s.TopicInfo("q")
			acked := tc.want['A'] == "ok"
			if acked && info != (TopicInfo{Name: "q"}) {
				t.Fatalf("acked but info = %+v", info)
			}
			if r2 != "" {
				r.want(at(now, ack("q", r2)), ok)
			}
			r.want(at(now, ack("q", r1)), stale)
		})
	}
}

// An ack stamped at the very time its lease ends is too late: the lease
// covers [start, until).
func TestAckAtExpiryBoundary(t *testing.T) {
	r := newLeaseRun(t)
	r.want(at(0, create("q")), ok)
	r.want(at(0, put("q", "m1")), ok)
	r.want(at(0, put("q", "m2")), ok)
	r1 := r.received(at(1000, recv("q", 100)), "m1", 1)
	r2 := r.received(at(1000, recv("q", 100)), "m2", 1)
	r.want(at(1099, ack("q", r1)), ok)
	r.want(at(1100, ack("q", r2)), stale)
	// A stamp behind the clock cannot revive an ended lease.
	r.want(at(900, ack("q", r2)), stale)
}

func TestStaleReceiptsOfEveryKind(t *testing.T) {
	r := newLeaseRun(t)
	r.want(at(0, create("q")), ok)
	r.want(at(0, create("other")), ok)
	r.want(at(0, put("q", "m")), ok)
	rc := r.received(at(0, recv("q", 1000)), "m", 1)
	for _, c := range []Command{
		ack("other", rc),          // another topic's name
		ack("missing", rc),        // no such topic
		ack("q", "zz"),            // not a receipt
		ack("q", "0-0-99"),        // a delivery that never happened
		ack("q", "0-1-3"),         // a message that does not exist
		nack("q", rc+"0", 0),      // a different delivery
		extend("q", "1-0-3", 100), // the same numbers in another topic
	} {
		r.want(at(1, c), stale)
	}
	r.info("q", TopicInfo{Name: "q", Leased: 1}) // nothing changed
	r.want(at(1, ack("q", rc)), ok)
	r.want(at(1, ack("q", rc)), stale)
}

func TestDeliveryLimitDeadLetters(t *testing.T) {
	r := newLeaseRun(t)
	r.want(at(0, createDL("q", 2, "dlq")), Result{Refusal: RefusalNoDeadLetter})
	r.want(at(0, create("dlq")), ok)
	r.want(at(0, createDL("q", 2, "dlq")), ok)
	r.want(at(0, createDL("q", 2, "dlq")), no) // exists
	r.want(at(0, put("q", "poison")), ok)
	r.want(at(0, put("q", "next")), ok)
	r.info("q", TopicInfo{Name: "q", Ready: 2, MaxDeliveries: 2, DeadLetter: "dlq"})
	// Expiry of the 2nd delivery dead-letters.
	r.received(at(0, recv("q", 100)), "poison", 1)
	r.want(tick(100), ok)
	rc := r.received(at(100, recv("q", 100)), "poison", 2)
	a := r.do(tick(200))
	if !reflect.DeepEqual(a.Readied, []string{"dlq"}) {
		t.Fatalf("Readied = %v, want [dlq]", a.Readied)
	}
	r.want(at(200, ack("q", rc)), stale)
	r.info("q", TopicInfo{Name: "q", Ready: 1, MaxDeliveries: 2, DeadLetter: "dlq"})
	r.info("dlq", TopicInfo{Name: "dlq", Ready: 1})
	// A nack of the 2nd delivery dead-letters too, even with a delay.
	n1 := r.received(at(200, recv("q", 100)), "next", 1)
	r.want(at(200, nack("q", n1, 0)), ok)
	n2 := r.received(at(200, recv("q", 100)), "next", 2)
	r.want(at(200, nack("q", n2, 50)), ok)
	r.info("q", TopicInfo{Name: "q", MaxDeliveries: 2, DeadLetter: "dlq"})
	// The dead-letter topic holds both, in the order they died, as fresh
	// messages.
	r.received(at(200, recv("dlq", 100)), "poison", 1)
	r.want(at(200, pop("dlq")), got("next"))
	checkTopics(t, r.s, []TopicDepth{{"dlq", 1, 6}, {"q", 0, 0}})
}

// No limit by default: a message is redelivered for ever, never dropped.
func TestNoDefaultDeliveryLimit(t *testing.T) {
	r := newLeaseRun(t)
	r.want(at(0, create("q")), ok)
	r.want(at(0, put("q", "m")), ok)
	for i := uint64(1); i <= 50; i++ {
		rc := r.received(at(i, recv("q", 1000)), "m", i)
		r.want(at(i, nack("q", rc, 0)), ok)
	}
	r.info("q", TopicInfo{Name: "q", Ready: 1})
}

func TestWaitingCommandChangesNothing(t *testing.T) {
	r := newLeaseRun(t)
	r.want(at(0, create("q")), ok)
	w := withSession(recv("q", 100), "c", 1)
	w.Wait = true
	r.want(w, Result{Waiting: true})
	g := withSession(pop("q"), "c", 1)
	g.Wait = true
	r.want(g, Result{Waiting: true})
	r.want(pop("missing"), no) // no such topic: answered, not waiting
	r.want(put("q", "m"), ok)
	// The same seq executes now: the waiting attempt left no session.
	rcv := r.do(w)
	if rcv.Duplicate || rcv.Result.Message != "m" {
		t.Fatalf("retry of a waiting receive = %+v", rcv)
	}
	// And a retry of the executed one is answered from the session.
	again := r.do(w)
	if !again.Duplicate || again.Result != rcv.Result {
		t.Fatalf("duplicate receive = %+v, want %+v", again, rcv.Result)
	}
}

func TestSettleIsExactlyOnceWithSessions(t *testing.T) {
	r := newLeaseRun(t)
	r.want(at(0, create("q")), ok)
	r.want(at(0, put("q", "m")), ok)
	rc := r.received(at(0, recv("q", 1000)), "m", 1)
	r.want(at(1, withSession(ack("q", rc), "c", 7)), ok)
	// The retry after a lost answer gets the first answer, not stale.
	if a := r.do(at(2, withSession(ack("q", rc), "c", 7))); !a.Duplicate || a.Result != ok {
		t.Fatalf("retried ack = %+v", a)
	}
	r.want(at(3, withSession(ack("q", rc), "c", 8)), stale)
	if a := r.do(at(4, withSession(ack("q", rc), "c", 8))); !a.Duplicate || a.Result != stale {
		t.Fatalf("retried stale ack = %+v", a)
	}
}

// Leases, counts, receipts and the clock are in state.db, so a snapshot
// (a copy of it) carries them: a receipt granted before works after.
func TestLeasesSurviveSnapshotRoundTrip(t *testing.T) {
	r := newLeaseRun(t)
	r.want(at(1000, create("dlq")), ok)
	r.want(at(1000, createDL("q", 3, "dlq")), ok)
	for _, m := range []string{"a", "b", "c"} {
		r.want(at(1000, put("q", m)), ok)
	}
	ra := r.received(at(1000, recv("q", 500)), "a", 1)
	rb := r.received(at(1000, recv("q", 500)), "b", 1)
	r.want(at(1000, nack("q", rb, 0)), ok)
	rb2 := r.received(at(1000, recv("q", 300)), "b", 2)
	if err := r.s.Commit(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := r.s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	writeFile(t, path, buf.Bytes())
	c := &leaseRun{t: t, s: openTestStateDB(t, path, 10), next: r.next}
	for _, s := range []*leaseRun{r, c} {
		s.info("q", TopicInfo{Name: "q", Ready: 1, Leased: 2, MaxDeliveries: 3, DeadLetter: "dlq"})
		if until, ok, _ := s.s.NextExpiry(); !ok || until != 1300 {
			t.Fatalf("NextExpiry = %d, %v; want 1300", until, ok)
		}
		if clock, _ := s.s.Clock(); clock != 1000 {
			t.Fatalf("Clock = %d", clock)
		}
		// The same log from here gives the same results on both.
		s.want(at(1200, ack("q", ra)), ok)
		s.want(tick(1300), ok)
		s.want(at(1300, ack("q", rb2)), stale)
		s.received(at(1300, recv("q", 100)), "b", 3)
		s.want(at(1300, ack("q", rb)), stale)
	}
}

// A version 1 state.db (before leased delivery) opens as version 2 with
// every queued message ready, in order.
func TestMigrateVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketTopics, bucketTopicNames, bucketQueues, bucketSessions, bucketSessionLRU} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := putSealed(meta, keyFormat, []byte{1}); err != nil {
			return err
		}
		if err := putCounter(tx, keyApplied, 7); err != nil {
			return err
		}
		if err := putCounter(tx, keyNextTopic, 1); err != nil {
			return err
		}
		key := indexKey(0)
		// head 2, tail 4: messages 2 and 3 are queued ("m2", "m3").
		rec := putU64(putU64(putU64(appendString(nil, "q"), 2), 4), 4)
		if err := putSealedKey(tx.Bucket(bucketTopics), key, rec); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTopicNames).Put([]byte("q"), key); err != nil {
			return err
		}
		q, err := tx.Bucket(bucketQueues).CreateBucket(key)
		if err != nil {
			return err
		}
		for i := uint64(2); i < 4; i++ {
			if err := putSealedKey(q, indexKey(i), []byte(fmt.Sprintf("m%d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openTestStateDB(t, path, 10)
	r := &leaseRun{t: t, s: s, next: 8}
	r.info("q", TopicInfo{Name: "q", Ready: 2})
	r.received(at(5, recv("q", 10)), "m2", 1)
	r.want(pop("q"), got("m3"))
	r.want(put("q", "m4"), ok)
	r.want(tick(15), ok)
	r.want(pop("q"), got("m2"))
	r.want(pop("q"), got("m4"))
}
