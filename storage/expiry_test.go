package storage

import (
	"testing"
	"time"
)

// NextExpiry follows every change of the expiry index (a lease, its ack, a
// nack's delay, a reopen) and answers while an Apply or a group commit
// holds the store: the raft loop asks on every tick and must not wait for
// state.db's fdatasyncs.
func TestNextExpiryFollowsAppliesWithoutWaiting(t *testing.T) {
	r := newLeaseRun(t)
	expect := func(until uint64, ok bool) {
		t.Helper()
		got, gotOK, err := r.s.NextExpiry()
		if err != nil || gotOK != ok || got != until {
			t.Fatalf("NextExpiry = %d, %v, %v; want %d, %v", got, gotOK, err, until, ok)
		}
	}
	expect(0, false)
	r.want(at(1000, create("q")), ok)
	r.want(at(1000, put("q", "m1")), ok)
	rc := r.received(at(1000, recv("q", 100)), "m1", 1)
	expect(1100, true)
	r.want(at(1010, ack("q", rc)), ok)
	expect(0, false)
	r.want(at(1020, put("q", "m2")), ok)
	rc = r.received(at(1020, recv("q", 500)), "m2", 1)
	expect(1520, true)
	r.want(at(1030, nack("q", rc, 50)), ok) // ready again at 1080
	expect(1080, true)
	if err := r.s.Commit(); err != nil {
		t.Fatal(err)
	}
	path := r.s.Path()
	if err := r.s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.s.NextExpiry(); err == nil {
		t.Fatalf("NextExpiry on a closed store answered without an error")
	}
	r.s = openTestStateDB(t, path, 10)
	expect(1080, true)

	r.s.mu.Lock() // as Apply and a group commit hold it
	got := make(chan uint64, 1)
	go func() {
		until, _, _ := r.s.NextExpiry()
		got <- until
	}()
	select {
	case until := <-got:
		if until != 1080 {
			t.Errorf("NextExpiry under the lock = %d, want 1080", until)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("NextExpiry waited for the store's lock")
	}
	r.s.mu.Unlock()
}
