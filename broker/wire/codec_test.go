package wire

import (
	"encoding/json"
	"strings"
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
		`{"type":"message","method":"RECEIVE","topic":"orders"}`,
		`{"type":"message","method":"RECEIVE","topic":"orders","lease_ms":100,"wait_ms":20000}`,
		`{"type":"message","method":"GET","topic":"orders","wait_ms":1}`,
		`{"client_id":"c1","seq":10,"type":"message","method":"ACK","topic":"orders","receipt":"0-1-2"}`,
		`{"type":"message","method":"NACK","topic":"orders","receipt":"0-1-2"}`,
		`{"type":"message","method":"NACK","topic":"orders","receipt":"0-1-2","delay_ms":5000}`,
		`{"type":"message","method":"EXTEND","topic":"orders","receipt":"0-1-2","lease_ms":43200000}`,
		`{"type":"topic","method":"PUT","topic":"orders","max_deliveries":5,"dead_letter":"orders.dead"}`,
		`{"type":"topic","method":"INFO","topic":"orders"}`,
		`{"type":"member","method":"GET"}`,
		`{"type":"member","method":"PUT","id":3,"role":"learner","ip":"127.0.0.1","port":5553,"internal_port":5563}`,
		`{"type":"member","method":"PUT","id":3,"role":"voter"}`,
		`{"type":"member","method":"DELETE","id":0}`,
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
		`{"success":true,"members":[{"id":0,"ip":"127.0.0.1","port":5550,"internal_port":5560,"role":"voter","match_index":9,"lag":0}]}`,
		`{"success":true,"message":"m","receipt":"0-1-2","deliveries":1}`,
		`{"success":false,"error":"stale_receipt","detail":"the lease ended"}`,
		`{"success":true,"info":{"name":"q","ready":1,"leased":2,"delayed":0,"max_deliveries":3,"dead_letter":"d"}}`,
		`{"success":true,"info":{"name":"q","ready":0,"leased":0,"delayed":0,"max_deliveries":0}}`,
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

// TestLeaseFieldValidation: out-of-range, mistyped, missing and misplaced
// leased-delivery fields are bad_request.
func TestLeaseFieldValidation(t *testing.T) {
	tests := []struct {
		frame string
		ok    bool
	}{
		{`{"type":"message","method":"RECEIVE","topic":"t","lease_ms":100}`, true},
		{`{"type":"message","method":"RECEIVE","topic":"t","lease_ms":99}`, false},
		{`{"type":"message","method":"RECEIVE","topic":"t","lease_ms":43200000}`, true},
		{`{"type":"message","method":"RECEIVE","topic":"t","lease_ms":43200001}`, false},
		{`{"type":"message","method":"RECEIVE","topic":"t","lease_ms":"1000"}`, false},
		{`{"type":"message","method":"RECEIVE","topic":"t","lease_ms":1000.5}`, false},
		{`{"type":"message","method":"RECEIVE","topic":"t","lease_ms":1e3}`, false},
		{`{"type":"message","method":"RECEIVE","topic":"t","lease_ms":-1}`, false},
		{`{"type":"message","method":"RECEIVE","topic":"t","lease_ms":null}`, false},
		{`{"type":"message","method":"RECEIVE","topic":"t","wait_ms":0}`, true},
		{`{"type":"message","method":"RECEIVE","topic":"t","wait_ms":20001}`, false},
		{`{"type":"message","method":"RECEIVE","topic":"t","wait_ms":true}`, false},
		{`{"type":"message","method":"RECEIVE"}`, false},
		{`{"type":"message","method":"RECEIVE","topic":"t","receipt":"x"}`, false},
		{`{"type":"message","method":"RECEIVE","topic":"t","delay_ms":1}`, false},
		{`{"type":"message","method":"GET","topic":"t","wait_ms":20000}`, true},
		{`{"type":"message","method":"GET","topic":"t","lease_ms":1000}`, false},
		{`{"type":"message","method":"PUT","topic":"t","message":"m","wait_ms":1}`, false},
		{`{"type":"message","method":"ACK","topic":"t"}`, false},
		{`{"type":"message","method":"ACK","topic":"t","receipt":""}`, false},
		{`{"type":"message","method":"ACK","topic":"t","receipt":7}`, false},
		{`{"type":"message","method":"ACK","topic":"t","receipt":"` + strings.Repeat("1", MaxReceiptBytes+1) + `"}`, false},
		{`{"type":"message","method":"ACK","topic":"t","receipt":"r","lease_ms":1000}`, false},
		{`{"type":"message","method":"NACK","topic":"t","receipt":"r","delay_ms":0}`, true},
		{`{"type":"message","method":"NACK","topic":"t","receipt":"r","delay_ms":43200001}`, false},
		{`{"type":"message","method":"EXTEND","topic":"t","receipt":"r"}`, true},
		{`{"type":"message","method":"EXTEND","topic":"t","receipt":"r","lease_ms":50}`, false},
		{`{"type":"topic","method":"PUT","topic":"t","max_deliveries":1,"dead_letter":"d"}`, true},
		{`{"type":"topic","method":"PUT","topic":"t","max_deliveries":0,"dead_letter":"d"}`, false},
		{`{"type":"topic","method":"PUT","topic":"t","max_deliveries":3}`, false},
		{`{"type":"topic","method":"PUT","topic":"t","dead_letter":"d"}`, false},
		{`{"type":"topic","method":"PUT","topic":"t","max_deliveries":3,"dead_letter":"t"}`, false},
		{`{"type":"topic","method":"PUT","topic":"t","max_deliveries":3,"dead_letter":""}`, false},
		{`{"type":"topic","method":"PUT","topic":"t","max_deliveries":1000001,"dead_letter":"d"}`, false},
		{`{"type":"topic","method":"INFO"}`, false},
		{`{"type":"topic","method":"INFO","topic":"t","wait_ms":1}`, false},
		{`{"type":"topic","method":"RECEIVE","topic":"t"}`, false},
		{`{"type":"message","method":"INFO","topic":"t"}`, false},
		{`{"type":"status","method":"ACK"}`, false},
	}
	for _, tt := range tests {
		_, derr := DecodeRequest([]byte(tt.frame), fuzzLimits)
		if (derr == nil) != tt.ok {
			t.Errorf("%s: error %v, want accepted %v", tt.frame, derr, tt.ok)
		}
		if derr != nil && derr.Code != ErrBadRequest {
			t.Errorf("%s: code %s, want bad_request", tt.frame, derr.Code)
		}
	}
}

// TestMemberRequestsRefused: a member request carries exactly the fields
// its method needs.
func TestMemberRequestsRefused(t *testing.T) {
	for _, f := range []string{
		`{"type":"member","method":"GET","id":1}`,
		`{"type":"member","method":"DELETE"}`,
		`{"type":"member","method":"DELETE","id":-1}`,
		`{"type":"member","method":"DELETE","id":1,"role":"voter"}`,
		`{"type":"member","method":"PUT","id":1}`,
		`{"type":"member","method":"PUT","id":1,"role":"boss"}`,
		`{"type":"member","method":"PUT","id":1,"role":"learner"}`,
		`{"type":"member","method":"PUT","id":1,"role":"learner","ip":"127.0.0.1","port":0,"internal_port":2}`,
		`{"type":"member","method":"PUT","id":1,"role":"voter","ip":"127.0.0.1"}`,
		`{"type":"topic","method":"DELETE","topic":"x"}`,
		`{"type":"topic","method":"GET","id":1}`,
	} {
		if _, derr := DecodeRequest([]byte(f), fuzzLimits); derr == nil || derr.Code != ErrBadRequest {
			t.Errorf("%s: %v, want bad_request", f, derr)
		}
	}
}
