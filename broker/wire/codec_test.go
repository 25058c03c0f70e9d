package wire

import (
	"encoding/json"
	"testing"

	"github.com/raftmq/raftmq/internal/coursetest"
)

// TestRequestsRoundTrip: every request of the README's protocol table, in
// both dialects, decodes and encodes back to the same bytes, so the broker
// and every client speak through one codec.
func TestRequestsRoundTrip(t *testing.T) {
	frames := []string{
		`{"type":"topic","method":"PUT","topic":"orders"}`,
		`{"type":"topic","method":"GET"}`,
		`{"type":"message","method":"PUT","topic":"orders","message":"hello"}`,
		`{"type":"message","method":"PUT","topic":"orders","message":""}`,
		`{"type":"message","method":"GET","topic":"orders"}`,
		`{"type":"status","method":"GET"}`,
		`{"client_id":"c1","seq":7,"type":"topic","method":"PUT","topic":"orders"}`,
		`{"client_id":"c1","seq":8,"type":"message","method":"PUT","topic":"orders","message":"hello"}`,
		`{"client_id":"c1","seq":9,"type":"message","method":"GET","topic":"orders"}`,
		`{"client_id":"c1","type":"topic","method":"GET"}`,
		`{"client_id":"c1","type":"status","method":"GET"}`,
		`{"type":"snapshot","method":"PUT"}`,
	}
	for _, o := range coursetest.Outcomes() {
		frames = append(frames, o.Request)
	}
	for _, f := range frames {
		req, derr := DecodeRequest([]byte(f), fuzzLimits)
		if derr != nil {
			t.Errorf("%s: %v", f, derr)
			continue
		}
		if got := string(EncodeRequest(req)); got != f {
			t.Errorf("round trip changed the frame:\n got %s\nwant %s", got, f)
		}
	}
}

// TestResponsesRoundTrip: every documented answer decodes and encodes back
// to the same bytes, with no key added or lost.
func TestResponsesRoundTrip(t *testing.T) {
	frames := []string{
		`{"success":true}`,
		`{"success":false}`,
		`{"success":true,"topics":["orders","audit"]}`,
		`{"success":true,"topics":[]}`,
		`{"success":true,"message":"hello"}`,
		`{"success":true,"message":""}`,
		`{"success":false,"error":"not_leader","detail":"this node is a follower","leader":"127.0.0.1:5551"}`,
		`{"success":false,"error":"no_leader","detail":"no leader is known yet"}`,
		`{"success":true,"index":42}`,
	}
	for _, o := range coursetest.Outcomes() {
		frames = append(frames, o.Answer)
	}
	for _, f := range frames {
		r, err := DecodeResponse([]byte(f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != f {
			t.Errorf("round trip changed the answer:\n got %s\nwant %s", b, f)
		}
	}
	if _, err := DecodeResponse([]byte(`not json`)); err == nil {
		t.Error("DecodeResponse accepted a frame that is not JSON")
	}
}

func TestResponseSame(t *testing.T) {
	m1, m2 := "a", "b"
	tests := []struct {
		a, b Response
		same bool
	}{
		{Response{Success: true, Message: &m1}, Response{Success: true, Message: &m1}, true},
		{Response{Success: true, Message: &m1}, Response{Success: true, Message: &m2}, false},
		{Response{Success: true}, Response{Success: false}, false},
		{Response{Success: true, Message: &m1}, Response{Success: true}, false},
		{ErrorResponse(ErrTimeout, "x"), ErrorResponse(ErrTimeout, "x"), false},
		{Response{Success: true, Topics: &[]string{"a"}}, Response{Success: true, Topics: &[]string{"a"}}, true},
		{Response{Success: true, Topics: &[]string{"a"}}, Response{Success: true, Topics: &[]string{"b"}}, false},
	}
	for i, tt := range tests {
		if got := tt.a.Same(tt.b); got != tt.same {
			t.Errorf("%d: %+v.Same(%+v) = %v, want %v", i, tt.a, tt.b, got, tt.same)
		}
	}
}
