package client

import (
	"errors"
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client/clienttest"
)

// TestLeasedDeliveryCalls: each call sends its fields with a session, and
// maps the answers: a delivery, nothing, a stale receipt (typed, not
// retried), topic details.
func TestLeasedDeliveryCalls(t *testing.T) {
	a := clienttest.NewBroker(t,
		clienttest.Step{Reply: `{"success":true}`},
		clienttest.Step{Reply: `{"success":true,"message":"m","receipt":"0-1-9","deliveries":2}`},
		clienttest.Step{Reply: `{"success":false}`},
		clienttest.Step{Reply: `{"success":true}`},
		clienttest.Step{Reply: `{"success":false,"error":"stale_receipt","detail":"lease ended"}`},
		clienttest.Step{Reply: `{"success":true}`},
		clienttest.Step{Reply: `{"success":true,"info":{"name":"q","ready":1,"leased":2,"delayed":3,"max_deliveries":4,"dead_letter":"d"}}`},
		clienttest.Step{Reply: `{"success":true,"message":"p"}`},
	)
	c, _ := newTestClient(t, Options{Servers: []string{a.Addr}})
	ctx := ctxTimeout(t, 20*time.Second)
	if created, err := c.CreateTopicWith(ctx, "q", TopicOptions{MaxDeliveries: 4, DeadLetter: "d"}); !created || err != nil {
		t.Fatalf("CreateTopicWith = %v, %v", created, err)
	}
	d, ok, err := c.Receive(ctx, "q", ReceiveOptions{Lease: 1500 * time.Millisecond, Wait: 2 * time.Second})
	if err != nil || !ok || d != (Delivery{Message: "m", Receipt: "0-1-9", Deliveries: 2}) {
		t.Fatalf("Receive = %+v, %v, %v", d, ok, err)
	}
	if _, ok, err := c.Receive(ctx, "q", ReceiveOptions{}); ok || err != nil {
		t.Fatalf("empty Receive = %v, %v; want false, nil", ok, err)
	}
	if err := c.Ack(ctx, "q", "0-1-9"); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	err = c.Nack(ctx, "q", "0-1-9", 250*time.Millisecond)
	var se *ServerError
	if !errors.Is(err, ErrStaleReceipt) || !errors.As(err, &se) || se.Detail != "lease ended" {
		t.Fatalf("stale Nack err = %v; want ErrStaleReceipt", err)
	}
	if err := c.Extend(ctx, "q", "0-1-9", time.Minute); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	info, ok, err := c.TopicInfo(ctx, "q")
	if err != nil || !ok || info != (wire.TopicInfo{Name: "q", Ready: 1, Leased: 2, Delayed: 3, MaxDeliveries: 4, DeadLetter: "d"}) {
		t.Fatalf("TopicInfo = %+v, %v, %v", info, ok, err)
	}
	if msg, ok, err := c.PopWait(ctx, "q", 300*time.Millisecond); msg != "p" || !ok || err != nil {
		t.Fatalf("PopWait = %q, %v, %v", msg, ok, err)
	}
	got := a.Requests()
	want := []wire.Request{
		{Type: "topic", Method: "PUT", Topic: "q", MaxDeliveries: 4, DeadLetter: "d", Seq: 1},
		{Type: "message", Method: "RECEIVE", Topic: "q", LeaseMs: 1500, WaitMs: 2000, Seq: 2},
		{Type: "message", Method: "RECEIVE", Topic: "q", Seq: 3},
		{Type: "message", Method: "ACK", Topic: "q", Receipt: "0-1-9", Seq: 4},
		{Type: "message", Method: "NACK", Topic: "q", Receipt: "0-1-9", DelayMs: 250, Seq: 5},
		{Type: "message", Method: "EXTEND", Topic: "q", Receipt: "0-1-9", LeaseMs: 60000, Seq: 6},
		{Type: "topic", Method: "INFO", Topic: "q"},
		{Type: "message", Method: "GET", Topic: "q", WaitMs: 300, Seq: 7},
	}
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d (a stale receipt must not be retried)", len(got), len(want))
	}
	for i, w := range want {
		g := got[i].Req
		w.ClientID, w.HasSession, w.Dialect = c.ClientID(), w.Seq != 0, wire.DialectRaftmq
		if g != w {
			t.Errorf("request %d:\n got  %+v\n want %+v", i, g, w)
		}
	}
}
