package broker

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/coursetest"
	"github.com/raftmq/raftmq/internal/testwait"
)

func startSingle(t *testing.T) (*running, *rawClient) {
	t.Helper()
	cfg := testCluster(t, 1)[0]
	r := startBroker(t, cfg)
	c := dialRaw(t, cfg.Self().ClientAddr())
	testwait.For(t, 2*time.Second, "single node to become leader", func() bool { return c.status().Role == "Leader" })
	return r, c
}

func mustJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad expectation %q: %v", s, err)
	}
	return m
}

// TestProtocolSingleNode walks the documented outcomes in order; each reply
// must have exactly the documented keys.
func TestProtocolSingleNode(t *testing.T) {
	_, c := startSingle(t)
	steps := coursetest.Outcomes()
	for i, s := range steps {
		got := c.do(s.Request)
		if want := mustJSON(t, s.Answer); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: %s\n got  %v\n want %v", i, s.Request, got, want)
		}
	}
}

func TestStatusShape(t *testing.T) {
	_, c := startSingle(t)
	got := c.do(`{"type":"status","method":"GET"}`)
	if role, ok := got["role"].(string); !ok || role != "Leader" {
		t.Fatalf("role = %#v, want the string Leader", got["role"])
	}
	term, ok := got["term"].(float64)
	if !ok || term < 1 || term != float64(int64(term)) {
		t.Fatalf("term = %#v, want a positive integer", got["term"])
	}
}

// TestBadInput sends each kind of bad request and checks it is refused:
// a request in the course's vocabulary (or not a JSON object) gets exactly
// {"success":false}; the same request naming its client_id gets success
// false with an error code and a detail. The broker still serves, and its
// status counts the course refusals.
func TestBadInput(t *testing.T) {
	_, c := startSingle(t)
	big := strings.Repeat("x", 1<<20+1)
	tests := []struct {
		name  string
		frame string
		code  string
	}{
		{"not json", `hello`, "bad_request"},
		{"empty frame", ``, "bad_request"},
		{"json array", `[1,2]`, "bad_request"},
		{"json string", `"topic"`, "bad_request"},
		{"json null", `null`, "bad_request"},
		{"truncated json", `{"type":"topic"`, "bad_request"},
		{"trailing data", `{"type":"topic","method":"GET"} {}`, "bad_request"},
		{"missing type", `{"method":"GET"}`, "bad_request"},
		{"missing method", `{"type":"topic"}`, "bad_request"},
		{"unknown type", `{"type":"queue","method":"GET"}`, "bad_request"},
		{"unknown method", `{"type":"topic","method":"DELETE"}`, "bad_request"},
		{"lowercase method", `{"type":"topic","method":"get"}`, "bad_request"},
		{"missing topic", `{"type":"message","method":"GET"}`, "bad_request"},
		{"missing topic on create", `{"type":"topic","method":"PUT"}`, "bad_request"},
		{"missing message", `{"type":"message","method":"PUT","topic":"t"}`, "bad_request"},
		{"number topic", `{"type":"message","method":"GET","topic":7}`, "bad_request"},
		{"null topic", `{"type":"topic","method":"PUT","topic":null}`, "bad_request"},
		{"object message", `{"type":"message","method":"PUT","topic":"t","message":{"a":1}}`, "bad_request"},
		{"number type", `{"type":1,"method":"GET"}`, "bad_request"},
		{"empty topic", `{"type":"topic","method":"PUT","topic":""}`, "bad_request"},
		{"unknown field", `{"type":"topic","method":"GET","mesage":"x"}`, "bad_request"},
		{"seq without client", `{"type":"topic","method":"PUT","topic":"t","seq":1}`, "bad_request"},
		{"zero seq", `{"type":"topic","method":"PUT","topic":"t","client_id":"c","seq":0}`, "bad_request"},
		{"invalid utf8", "{\"type\":\"topic\",\"method\":\"PUT\",\"topic\":\"\xff\"}", "bad_request"},
		{"topic too long", fmt.Sprintf(`{"type":"topic","method":"PUT","topic":%q}`, strings.Repeat("t", 256)), "too_large"},
		{"oversized message", fmt.Sprintf(`{"type":"message","method":"PUT","topic":"t","message":%q}`, big), "too_large"},
	}
	course := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			beyond := strings.Contains(tt.frame, `"seq"`) || strings.Contains(tt.frame, `"mesage"`)
			if !beyond {
				// Only the course's vocabulary, or not an object at all.
				if got := c.raw([]byte(tt.frame)); string(got) != `{"success":false}` {
					t.Fatalf("course request: reply %s, want exactly {\"success\":false}", got)
				}
				course++
			}
			frame := tt.frame
			if !beyond {
				if !strings.HasPrefix(frame, "{") {
					return // nowhere to put a client_id
				}
				// The same request naming its client speaks raftmq's dialect.
				frame = `{"client_id":"c",` + frame[1:]
			}
			got := c.roundTrip([]byte(frame))
			if got["success"] != false || got["error"] != tt.code {
				t.Fatalf("%s: reply %v, want success false and error %q", frame, got, tt.code)
			}
			if d, _ := got["detail"].(string); d == "" {
				t.Fatalf("reply %v has no detail", got)
			}
		})
	}
	testwait.For(t, 5*time.Second, "status to count the course refusals", func() bool { return c.status().Refused == uint64(course) })
	// Still serving, and nothing was created by the refused requests.
	if got := c.do(`{"type":"topic","method":"GET"}`); !reflect.DeepEqual(got, mustJSON(t, `{"success":true,"topics":[]}`)) {
		t.Fatalf("after bad input: %v", got)
	}
}

// TestRestartKeepsData stops the broker gracefully and starts it again on
// the same data directory.
func TestRestartKeepsData(t *testing.T) {
	cfg := testCluster(t, 1)[0]
	r := startBroker(t, cfg)
	c := dialRaw(t, cfg.Self().ClientAddr())
	testwait.For(t, 2*time.Second, "leader", func() bool { return c.status().Role == "Leader" })
	c.do(`{"type":"topic","method":"PUT","topic":"q"}`)
	for i := 0; i < 3; i++ {
		c.do(fmt.Sprintf(`{"type":"message","method":"PUT","topic":"q","message":"m%d"}`, i))
	}
	c.do(`{"type":"message","method":"GET","topic":"q"}`)
	term1 := c.status().Term
	r.stop(t)

	startBroker(t, cfg)
	c2 := dialRaw(t, cfg.Self().ClientAddr())
	testwait.For(t, 2*time.Second, "leader after restart", func() bool { return c2.status().Role == "Leader" })
	if term2 := c2.status().Term; term2 <= term1 {
		t.Fatalf("term after restart %d, want > %d", term2, term1)
	}
	for _, want := range []string{"m1", "m2"} {
		got := c2.do(`{"type":"message","method":"GET","topic":"q"}`)
		if got["message"] != want {
			t.Fatalf("pop = %v, want %q", got, want)
		}
	}
	if got := c2.do(`{"type":"message","method":"GET","topic":"q"}`); got["success"] != false {
		t.Fatalf("queue should be empty, got %v", got)
	}
}

// TestConcurrentProducers: 20 clients put 50 messages each; all are
// acknowledged, all are there, each client's order is kept.
func TestConcurrentProducers(t *testing.T) {
	_, c := startSingle(t)
	c.do(`{"type":"topic","method":"PUT","topic":"q"}`)
	const clients, each = 20, 50
	cfgAddr := c.status().Address
	var wg sync.WaitGroup
	errs := make(chan string, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cc := dialRaw(t, cfgAddr)
			for j := 0; j < each; j++ {
				got := cc.do(fmt.Sprintf(`{"type":"message","method":"PUT","topic":"q","message":"%d/%d"}`, i, j))
				if got["success"] != true {
					errs <- fmt.Sprintf("client %d put %d: %v", i, j, got)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	next := make([]int, clients)
	for k := 0; k < clients*each; k++ {
		got := c.do(`{"type":"message","method":"GET","topic":"q"}`)
		msg, ok := got["message"].(string)
		if !ok {
			t.Fatalf("pop %d: %v", k, got)
		}
		var i, j int
		if _, err := fmt.Sscanf(msg, "%d/%d", &i, &j); err != nil {
			t.Fatalf("pop %d: unexpected message %q", k, msg)
		}
		if j != next[i] {
			t.Fatalf("client %d: got message %d, want %d (order broken or duplicate)", i, j, next[i])
		}
		next[i]++
	}
	if got := c.do(`{"type":"message","method":"GET","topic":"q"}`); got["success"] != false {
		t.Fatalf("extra message: %v", got)
	}
}

// TestSingleNodeAnswersFirstRequestAsLeader: a one-node broker is leader
// before its client port answers anything, fresh and after a restart, at
// the default timing (a whole election timeout is 0.5–1 s): its very first
// answers are status Leader and a created topic.
func TestSingleNodeAnswersFirstRequestAsLeader(t *testing.T) {
	cfg := testCluster(t, 1)[0]
	cfg.TickInterval = config.Default().TickInterval
	for round := 0; round < 3; round++ {
		r := startBroker(t, cfg)
		c := dialRaw(t, cfg.Self().ClientAddr())
		if st := c.status(); st.Role != "Leader" {
			t.Fatalf("round %d: first status %+v, want Leader", round, st)
		}
		topic := fmt.Sprintf(`{"type":"topic","method":"PUT","topic":"t%d"}`, round)
		if got := c.raw([]byte(topic)); string(got) != `{"success":true}` {
			t.Fatalf("round %d: first topic request answered %s", round, got)
		}
		r.stop(t)
	}
}
