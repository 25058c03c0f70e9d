package broker

import (
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
)

func req(id string, deadline time.Time) clientRequest {
	return clientRequest{route: replyTo{frames: [][]byte{[]byte(id)}}, req: wire.Request{Topic: id}, deadline: deadline}
}

func names(crs []clientRequest) []string {
	var out []string
	for _, cr := range crs {
		out = append(out, string(cr.route.frames[0]))
	}
	return out
}

func TestRequestsWrites(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newRequests(41)
	a := r.addWrite(req("a", t0.Add(time.Second)))
	b := r.addWrite(req("b", t0.Add(2*time.Second)))
	c := r.addWrite(req("c", t0.Add(3*time.Second)))
	if a != 41 || b != 42 || c != 43 || r.pendingWrites() != 3 {
		t.Fatalf("ids %d %d %d pending %d; want 41 42 43 and 3", a, b, c, r.pendingWrites())
	}
	if w, ok := r.takeWrite(b); !ok || string(w.route.frames[0]) != "b" {
		t.Fatalf("takeWrite(b) = %v, %v", w, ok)
	}
	if _, ok := r.takeWrite(b); ok {
		t.Fatal("b taken twice")
	}
	if _, ok := r.takeWrite(7); ok {
		t.Fatal("an id never registered was found")
	}
	// b was answered: it does not time out; a does, c does not yet.
	writes, _, _ := r.expired(t0.Add(2 * time.Second))
	if got := names(writes); len(got) != 1 || got[0] != "a" || r.pendingWrites() != 1 {
		t.Fatalf("expired %v pending %d; want [a] and 1", got, r.pendingWrites())
	}
	if got := names(r.takeAll()); len(got) != 1 || got[0] != "c" || r.pendingWrites() != 0 {
		t.Fatalf("takeAll %v; want [c]", got)
	}
}

func TestRequestsReads(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newRequests(1)
	x := r.addRead(req("x", t0.Add(time.Second)))
	y := r.addRead(req("y", t0.Add(time.Second)))
	z := r.addRead(req("z", t0.Add(5*time.Second)))
	r.readIndexKnown(x, 10)
	r.readIndexKnown(z, 20)
	r.readIndexKnown(99, 1) // unknown: ignored
	if got := names(r.takeServable(15)); len(got) != 1 || got[0] != "x" {
		t.Fatalf("servable at 15: %v; want [x]", got)
	}
	_, unconfirmed, unapplied := r.expired(t0.Add(time.Second))
	if got := names(unconfirmed); len(got) != 1 || got[0] != "y" || len(unapplied) != 0 {
		t.Fatalf("expired: unconfirmed %v unapplied %v; want [y] and none (y=%d)", got, names(unapplied), y)
	}
	_, _, unapplied = r.expired(t0.Add(5 * time.Second))
	if got := names(unapplied); len(got) != 1 || got[0] != "z" {
		t.Fatalf("expired later: unapplied %v; want [z]", got)
	}
	if got := r.takeReads(); len(got) != 0 {
		t.Fatalf("reads left: %v", names(got))
	}
}
