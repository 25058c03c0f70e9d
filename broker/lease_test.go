package broker

import (
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testwait"
)

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// receiveOK sends a RECEIVE and checks the answer has exactly the
// documented keys; it returns the receipt.
func receiveOK(t *testing.T, c *rawClient, req, msg string, deliveries int) string {
	t.Helper()
	got := c.do(req)
	if !reflect.DeepEqual(keysOf(got), []string{"deliveries", "message", "receipt", "success"}) ||
		got["success"] != true || got["message"] != msg || got["deliveries"] != float64(deliveries) {
		t.Fatalf("%s = %v, want %q, delivery %d", req, got, msg, deliveries)
	}
	r, ok := got["receipt"].(string)
	if !ok || r == "" {
		t.Fatalf("receipt %#v", got["receipt"])
	}
	return r
}

func expectJSON(t *testing.T, c *rawClient, req, want string) {
	t.Helper()
	if got := c.do(req); !reflect.DeepEqual(got, mustJSON(t, want)) {
		t.Fatalf("%s\n got  %v\n want %s", req, got, want)
	}
}

func expectError(t *testing.T, c *rawClient, req, code string) {
	t.Helper()
	got := c.do(req)
	if got["success"] != false || got["error"] != code || got["detail"] == "" {
		t.Fatalf("%s = %v, want error %s", req, got, code)
	}
}

func info(t *testing.T, c *rawClient, topic string) map[string]any {
	t.Helper()
	got := c.do(fmt.Sprintf(`{"type":"topic","method":"INFO","topic":%q}`, topic))
	m, ok := got["info"].(map[string]any)
	if got["success"] != true || !ok {
		t.Fatalf("INFO %s = %v", topic, got)
	}
	return m
}

// TestLeasedDeliveryProtocol walks the leased-delivery table on one node:
// receive, expiry and prompt redelivery without any other request, stale
// receipts, nack into the dead-letter topic, extend, ack, topic details.
func TestLeasedDeliveryProtocol(t *testing.T) {
	_, c := startSingle(t)
	expectError(t, c, `{"type":"topic","method":"PUT","topic":"q","max_deliveries":2,"dead_letter":"dlq"}`, "bad_request")
	expectJSON(t, c, `{"type":"topic","method":"PUT","topic":"dlq"}`, `{"success":true}`)
	expectJSON(t, c, `{"type":"topic","method":"PUT","topic":"q","max_deliveries":2,"dead_letter":"dlq"}`, `{"success":true}`)
	expectJSON(t, c, `{"type":"topic","method":"PUT","topic":"q","max_deliveries":2,"dead_letter":"dlq"}`, `{"success":false}`)
	expectJSON(t, c, `{"type":"topic","method":"INFO","topic":"nope"}`, `{"success":false}`)
	expectJSON(t, c, `{"type":"message","method":"RECEIVE","topic":"nope"}`, `{"success":false}`)
	expectJSON(t, c, `{"type":"message","method":"RECEIVE","topic":"q"}`, `{"success":false}`)
	expectJSON(t, c, `{"type":"message","method":"PUT","topic":"q","message":"m1"}`, `{"success":true}`)
	expectJSON(t, c, `{"type":"message","method":"PUT","topic":"q","message":"m2"}`, `{"success":true}`)

	r1 := receiveOK(t, c, `{"type":"message","method":"RECEIVE","topic":"q","lease_ms":300}`, "m1", 1)
	if got := info(t, c, "q"); !reflect.DeepEqual(got, map[string]any{"name": "q", "ready": 1.0, "leased": 1.0, "delayed": 0.0, "max_deliveries": 2.0, "dead_letter": "dlq"}) {
		t.Fatalf("info = %v", got)
	}
	// Only reads (INFO) from here: the leader's expiry tick alone brings m1 back.
	testwait.For(t, 5*time.Second, "the expired lease to make m1 ready", func() bool { return info(t, c, "q")["ready"] == 2.0 })
	expectError(t, c, fmt.Sprintf(`{"type":"message","method":"ACK","topic":"q","receipt":%q}`, r1), "stale_receipt")
	// Original place: m1 comes before m2 again.
	r2 := receiveOK(t, c, `{"type":"message","method":"RECEIVE","topic":"q"}`, "m1", 2)
	expectJSON(t, c, fmt.Sprintf(`{"type":"message","method":"NACK","topic":"q","receipt":%q,"delay_ms":10}`, r2), `{"success":true}`)
	// Its 2nd delivery was nacked: it is in the dead-letter topic.
	if got := info(t, c, "dlq"); got["ready"] != 1.0 {
		t.Fatalf("dlq info = %v", got)
	}
	expectJSON(t, c, `{"type":"message","method":"GET","topic":"dlq"}`, `{"success":true,"message":"m1"}`)

	r3 := receiveOK(t, c, `{"type":"message","method":"RECEIVE","topic":"q","lease_ms":100}`, "m2", 1)
	expectJSON(t, c, fmt.Sprintf(`{"type":"message","method":"EXTEND","topic":"q","receipt":%q,"lease_ms":60000}`, r3), `{"success":true}`)
	expectJSON(t, c, fmt.Sprintf(`{"client_id":"c","seq":1,"type":"message","method":"ACK","topic":"q","receipt":%q}`, r3), `{"success":true}`)
	// A retry with the same seq gets the first answer; a new ack is stale.
	expectJSON(t, c, fmt.Sprintf(`{"client_id":"c","seq":1,"type":"message","method":"ACK","topic":"q","receipt":%q}`, r3), `{"success":true}`)
	expectError(t, c, fmt.Sprintf(`{"client_id":"c","seq":2,"type":"message","method":"ACK","topic":"q","receipt":%q}`, r3), "stale_receipt")
	expectError(t, c, `{"type":"message","method":"ACK","topic":"q","receipt":"not-a-receipt"}`, "bad_request")
	expectError(t, c, `{"type":"message","method":"RECEIVE","topic":"q","lease_ms":99}`, "bad_request")
	if got := info(t, c, "q"); got["ready"] != 0.0 || got["leased"] != 0.0 {
		t.Fatalf("info after ack = %v", got)
	}
}

// TestLongPolling: waiting GETs and RECEIVEs are answered when a put from
// another client arrives, in the order they arrived; a wait that ends
// with nothing is {"success":false}, never before wait_ms.
func TestLongPolling(t *testing.T) {
	r, c := startSingle(t)
	addr := r.b.cfg.Self().ClientAddr()
	_ = r
	expectJSON(t, c, `{"type":"topic","method":"PUT","topic":"q"}`, `{"success":true}`)

	start := time.Now()
	expectJSON(t, c, `{"type":"message","method":"GET","topic":"q","wait_ms":200}`, `{"success":false}`)
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("answered after %v, before the 200 ms wait", waited)
	}

	type answer struct {
		who int
		got map[string]any
	}
	answers := make(chan answer, 3)
	reqs := []string{
		`{"type":"message","method":"RECEIVE","topic":"q","wait_ms":10000}`,
		`{"type":"message","method":"GET","topic":"q","wait_ms":10000}`,
		`{"type":"message","method":"GET","topic":"q","wait_ms":1500}`,
	}
	for i, req := range reqs {
		w := dialRaw(t, addr)
		go func() { answers <- answer{i, w.do(req)} }()
		// Arrival order is the order of the waiters.
		testwait.For(t, 5*time.Second, "the waiter to park", func() bool { return c.status().Waiting == i+1 })
	}
	expectJSON(t, c, `{"type":"message","method":"PUT","topic":"q","message":"a"}`, `{"success":true}`)
	first := <-answers
	if first.who != 0 || first.got["message"] != "a" || first.got["receipt"] == nil {
		t.Fatalf("first answer %+v, want the RECEIVE (waiter 0) with a", first)
	}
	expectJSON(t, c, `{"type":"message","method":"PUT","topic":"q","message":"b"}`, `{"success":true}`)
	second := <-answers
	if second.who != 1 || !reflect.DeepEqual(second.got, map[string]any{"success": true, "message": "b"}) {
		t.Fatalf("second answer %+v, want the GET (waiter 1) with b", second)
	}
	third := <-answers
	if third.who != 2 || !reflect.DeepEqual(third.got, map[string]any{"success": false}) {
		t.Fatalf("third answer %+v, want waiter 2's wait to end with nothing", third)
	}
}

// TestWaitersAnsweredNotLeader: a leader that loses leadership (here: its
// followers stop, and CheckQuorum deposes it) answers its waiters
// not_leader (no_leader while no leader is known) at once, not at the end
// of their wait.
func TestWaitersAnsweredNotLeader(t *testing.T) {
	cfgs := testCluster(t, 3)
	nodes := map[int]*running{}
	clients := map[int]*rawClient{}
	for i, cfg := range cfgs {
		nodes[i] = startBroker(t, cfg)
		clients[i] = dialRaw(t, cfg.Self().ClientAddr())
	}
	lead := leaderOf(t, clients)
	expectJSON(t, clients[lead], `{"type":"topic","method":"PUT","topic":"q"}`, `{"success":true}`)
	w := dialRaw(t, cfgs[lead].Self().ClientAddr())
	got := make(chan map[string]any, 1)
	go func() { got <- w.do(`{"type":"message","method":"RECEIVE","topic":"q","wait_ms":20000}`) }()
	testwait.For(t, 5*time.Second, "the waiter to park", func() bool { return clients[lead].status().Waiting == 1 })
	for i := range nodes {
		if i != lead {
			nodes[i].stop(t)
		}
	}
	select {
	case a := <-got:
		if a["error"] != "not_leader" && a["error"] != "no_leader" {
			t.Fatalf("waiter answered %v, want not_leader", a)
		}
	case <-time.After(15 * time.Second): // less than the 20 s wait
		t.Fatal("the waiter was not answered after the leader stepped down")
	}
}

// TestWaitersCountAgainstMaxPending: a parked long poll holds its place in
// max_pending_requests until it is answered (here: its wait ends).
func TestWaitersCountAgainstMaxPending(t *testing.T) {
	cfg := testCluster(t, 1)[0]
	cfg.MaxPendingRequests = 2
	startBroker(t, cfg)
	c := dialRaw(t, cfg.Self().ClientAddr())
	testwait.For(t, 2*time.Second, "single node to become leader", func() bool { return c.status().Role == "Leader" })
	expectJSON(t, c, `{"type":"topic","method":"PUT","topic":"q"}`, `{"success":true}`)
	answers := make(chan map[string]any, 2)
	for i := 0; i < 2; i++ {
		w := dialRaw(t, cfg.Self().ClientAddr())
		go func() { answers <- w.do(`{"type":"message","method":"GET","topic":"q","wait_ms":1500}`) }()
	}
	testwait.For(t, 5*time.Second, "two waiters to park", func() bool { return c.status().Waiting == 2 })
	expectError(t, c, `{"type":"message","method":"PUT","topic":"q","message":"m","client_id":"p","seq":1}`, "overloaded")
	for i := 0; i < 2; i++ {
		if a := <-answers; !reflect.DeepEqual(a, map[string]any{"success": false}) {
			t.Fatalf("waiter answered %v, want the end of its wait", a)
		}
	}
	// Answered, they freed their places.
	expectJSON(t, c, `{"type":"message","method":"PUT","topic":"q","message":"m","client_id":"p","seq":2}`, `{"success":true}`)
}

// TestLongPollEndIsRecorded: a long poll whose wait ends with nothing is an
// answer like any other, recorded for its client_id and seq. A resend of
// that seq (a client that lost the answer, or a copy still in flight)
// gets the same {"success":false} and does not take a message put
// meanwhile, which no one would receive.
func TestLongPollEndIsRecorded(t *testing.T) {
	_, c := startSingle(t)
	expectJSON(t, c, `{"type":"topic","method":"PUT","topic":"q"}`, `{"success":true}`)
	for _, method := range []string{"GET", "RECEIVE"} {
		req := fmt.Sprintf(`{"client_id":"lp-%s","seq":1,"type":"message","method":%q,"topic":"q","wait_ms":100}`, method, method)
		expectJSON(t, c, req, `{"success":false}`)
		expectJSON(t, c, `{"type":"message","method":"PUT","topic":"q","message":"m"}`, `{"success":true}`)
		expectJSON(t, c, req, `{"success":false}`)
		if got := info(t, c, "q"); got["ready"] != 1.0 || got["leased"] != 0.0 {
			t.Fatalf("%s: the resend of an ended long poll took the message: info %v", method, got)
		}
		expectJSON(t, c, `{"type":"message","method":"GET","topic":"q"}`, `{"success":true,"message":"m"}`)
	}
}
