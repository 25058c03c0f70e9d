package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/internal/coursetest"
	"github.com/raftmq/raftmq/internal/proccluster"
	"github.com/raftmq/raftmq/internal/testwait"
)

// askJSON sends frame to node i on a fresh REQ socket and decodes the reply.
func askJSON(t *testing.T, c *proccluster.Cluster, i int, frame string) map[string]any {
	t.Helper()
	raw, err := coursetest.Ask(c.ClientAddrs()[i], frame, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: reply %q: %v", frame, raw, err)
	}
	return m
}

func askExpect(t *testing.T, c *proccluster.Cluster, i int, frame, want string) {
	t.Helper()
	raw, err := coursetest.Ask(c.ClientAddrs()[i], frame, 10*time.Second)
	if err != nil || string(raw) != want {
		t.Fatalf("%s\n got  %s (%v)\n want %s", frame, raw, err, want)
	}
}

func askError(t *testing.T, c *proccluster.Cluster, i int, frame, code string) {
	t.Helper()
	if got := askJSON(t, c, i, frame); got["success"] != false || got["error"] != code || got["detail"] == "" {
		t.Fatalf("%s = %v, want error %s", frame, got, code)
	}
}

// TestLeaseProtocolThreeNodes walks the leased-delivery protocol table on
// the leader of three processes, byte for byte where the answer is fixed.
func TestLeaseProtocolThreeNodes(t *testing.T) {
	c := newCluster(t, 3)
	lead, _, err := c.WaitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	follower := (lead + 1) % 3
	askError(t, c, lead, `{"type":"topic","method":"PUT","topic":"q","max_deliveries":2,"dead_letter":"dlq"}`, "bad_request")
	askExpect(t, c, lead, `{"type":"topic","method":"PUT","topic":"dlq"}`, `{"success":true}`)
	askExpect(t, c, lead, `{"type":"topic","method":"PUT","topic":"q","max_deliveries":2,"dead_letter":"dlq"}`, `{"success":true}`)
	askExpect(t, c, lead, `{"type":"topic","method":"PUT","topic":"q","max_deliveries":2,"dead_letter":"dlq"}`, `{"success":false}`)
	askError(t, c, lead, `{"type":"message","method":"RECEIVE","topic":"q","lease_ms":"1000"}`, "bad_request")
	askError(t, c, lead, `{"type":"message","method":"RECEIVE","topic":"q","wait_ms":20001}`, "bad_request")
	askExpect(t, c, lead, `{"type":"message","method":"RECEIVE","topic":"q"}`, `{"success":false}`)
	askExpect(t, c, lead, `{"type":"message","method":"PUT","topic":"q","message":"m1"}`, `{"success":true}`)
	askExpect(t, c, lead, `{"type":"message","method":"PUT","topic":"q","message":"m2"}`, `{"success":true}`)
	if got := askJSON(t, c, follower, `{"type":"message","method":"RECEIVE","topic":"q"}`); got["error"] != "not_leader" || got["leader"] != c.ClientAddrs()[lead] {
		t.Fatalf("follower answered RECEIVE with %v, want not_leader naming %s", got, c.ClientAddrs()[lead])
	}

	receive := func(frame, msg string, deliveries float64) string {
		t.Helper()
		got := askJSON(t, c, lead, frame)
		if len(got) != 4 || got["success"] != true || got["message"] != msg || got["deliveries"] != deliveries {
			t.Fatalf("%s = %v, want %s delivery %v", frame, got, msg, deliveries)
		}
		return got["receipt"].(string)
	}
	r1 := receive(`{"type":"message","method":"RECEIVE","topic":"q","lease_ms":300}`, "m1", 1)
	askExpect(t, c, lead, `{"type":"topic","method":"INFO","topic":"q"}`,
		`{"success":true,"info":{"name":"q","ready":1,"leased":1,"delayed":0,"max_deliveries":2,"dead_letter":"dlq"}}`)
	// Nothing but reads from here until the lease ends: the leader's own
	// expiry entry brings m1 back.
	testwait.For(t, 10*time.Second, "m1's lease to end", func() bool {
		info, _ := askJSON(t, c, lead, `{"type":"topic","method":"INFO","topic":"q"}`)["info"].(map[string]any)
		return info["ready"] == 2.0
	})
	askError(t, c, lead, fmt.Sprintf(`{"type":"message","method":"ACK","topic":"q","receipt":%q}`, r1), "stale_receipt")
	r2 := receive(`{"type":"message","method":"RECEIVE","topic":"q"}`, "m1", 2) // back in its place, before m2
	askExpect(t, c, lead, fmt.Sprintf(`{"type":"message","method":"NACK","topic":"q","receipt":%q,"delay_ms":1000}`, r2), `{"success":true}`)
	askExpect(t, c, lead, `{"type":"message","method":"GET","topic":"dlq"}`, `{"success":true,"message":"m1"}`)
	r3 := receive(`{"type":"message","method":"RECEIVE","topic":"q","lease_ms":200}`, "m2", 1)
	askExpect(t, c, lead, fmt.Sprintf(`{"type":"message","method":"EXTEND","topic":"q","receipt":%q,"lease_ms":60000}`, r3), `{"success":true}`)
	askExpect(t, c, lead, fmt.Sprintf(`{"client_id":"e2e","seq":1,"type":"message","method":"ACK","topic":"q","receipt":%q}`, r3), `{"success":true}`)
	askExpect(t, c, lead, fmt.Sprintf(`{"client_id":"e2e","seq":1,"type":"message","method":"ACK","topic":"q","receipt":%q}`, r3), `{"success":true}`)
	askError(t, c, lead, fmt.Sprintf(`{"type":"message","method":"EXTEND","topic":"q","receipt":%q}`, r3), "stale_receipt")
	askExpect(t, c, lead, `{"type":"message","method":"GET","topic":"q","wait_ms":100}`, `{"success":false}`)
	askExpect(t, c, lead, `{"type":"topic","method":"INFO","topic":"q"}`,
		`{"success":true,"info":{"name":"q","ready":0,"leased":0,"delayed":0,"max_deliveries":2,"dead_letter":"dlq"}}`)
}

// TestLeaseSurvivesLeaderKill: leases granted by a leader that is then
// SIGKILLed are honoured by the next one: a receipt still acks, and a
// lease that ends is redelivered with its delivery count kept.
func TestLeaseSurvivesLeaderKill(t *testing.T) {
	c := newCluster(t, 3)
	cl := clusterClient(t, c)
	ctx := context.Background()
	if ok, err := cl.CreateTopic(ctx, "q"); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	putN(t, cl, "q", 0, 2)
	long, ok, err := cl.Receive(ctx, "q", client.ReceiveOptions{Lease: time.Minute})
	if err != nil || !ok || long.Message != "m0" {
		t.Fatalf("receive: %+v %v %v", long, ok, err)
	}
	short, ok, err := cl.Receive(ctx, "q", client.ReceiveOptions{Lease: 2 * time.Second})
	if err != nil || !ok || short.Message != "m1" {
		t.Fatalf("receive: %+v %v %v", short, ok, err)
	}
	lead, term, err := c.WaitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(lead); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 15*time.Second, "a new leader", func() bool {
		l, tm, err := c.WaitLeader(time.Second)
		return err == nil && l != lead && tm > term
	})
	// The short lease ends on the new leader, which redelivers m1 as its
	// second delivery; the old receipt is stale.
	var again client.Delivery
	testwait.For(t, 15*time.Second, "m1 to be redelivered", func() bool {
		d, ok, err := cl.Receive(ctx, "q", client.ReceiveOptions{Lease: time.Minute, Wait: time.Second})
		if err != nil {
			t.Fatalf("receive after failover: %v", err)
		}
		again = d
		return ok
	})
	if again.Message != "m1" || again.Deliveries != 2 {
		t.Fatalf("redelivered %+v, want m1 as delivery 2", again)
	}
	if err := cl.Ack(ctx, "q", short.Receipt); !errors.Is(err, client.ErrStaleReceipt) {
		t.Fatalf("ack with the ended lease's receipt: %v, want ErrStaleReceipt", err)
	}
	// The long lease granted by the dead leader still holds, and acks.
	if err := cl.Ack(ctx, "q", long.Receipt); err != nil {
		t.Fatalf("ack with the old leader's receipt: %v", err)
	}
	if err := cl.Ack(ctx, "q", again.Receipt); err != nil {
		t.Fatalf("ack: %v", err)
	}
	info, ok, err := cl.TopicInfo(ctx, "q")
	if err != nil || !ok || info.Ready+info.Leased+info.Delayed != 0 {
		t.Fatalf("info after acks = %+v, %v, %v; want empty", info, ok, err)
	}
}

// TestLongPollAgainstPut: a RECEIVE and a GET waiting on the leader are
// answered by another client's puts, in arrival order.
func TestLongPollAgainstPut(t *testing.T) {
	c := newCluster(t, 3)
	producer := clusterClient(t, c)
	ctx := context.Background()
	if ok, err := producer.CreateTopic(ctx, "q"); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	lead, _, err := c.WaitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		who string
		msg string
		ok  bool
		err error
	}
	answers := make(chan answer, 2)
	recv := clusterClient(t, c)
	go func() {
		d, ok, err := recv.Receive(ctx, "q", client.ReceiveOptions{Wait: 15 * time.Second})
		answers <- answer{"receive", d.Message, ok, err}
	}()
	waiting := func(n int) func() bool {
		return func() bool {
			st, err := c.Status(lead, time.Second)
			return err == nil && st.Waiting == n
		}
	}
	testwait.For(t, 10*time.Second, "the RECEIVE to wait", waiting(1))
	pop := clusterClient(t, c)
	go func() {
		msg, ok, err := pop.PopWait(ctx, "q", 15*time.Second)
		answers <- answer{"get", msg, ok, err}
	}()
	testwait.For(t, 10*time.Second, "the GET to wait too", waiting(2))
	putN(t, producer, "q", 0, 2)
	got := []answer{<-answers, <-answers}
	want := []answer{{"receive", "m0", true, nil}, {"get", "m1", true, nil}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("answers %+v, want %+v", got, want)
	}
}
