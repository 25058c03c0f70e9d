package metrics

import (
	"reflect"
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
)

func TestBoundTopics(t *testing.T) {
	a, b, c := Topic{"a", 1, 0, 0, 10}, Topic{"b", 2, 1, 0, 20}, Topic{"c", 4, 0, 2, 40}
	tests := []struct {
		name   string
		topics []Topic
		limit  int
		want   []Topic
	}{
		{"under the limit", []Topic{a, b}, 3, []Topic{a, b}},
		{"over the limit", []Topic{a, b, c}, 1, []Topic{a, {OtherTopic, 6, 1, 2, 60}}},
		{"limit zero", []Topic{a, b}, 0, []Topic{{OtherTopic, 3, 1, 0, 30}}},
		{"a topic named other joins the sum", []Topic{{OtherTopic, 8, 0, 0, 80}, a, c}, 2, []Topic{a, {OtherTopic, 12, 0, 2, 120}}},
		{"none", nil, 5, []Topic{}},
	}
	for _, tt := range tests {
		if got := boundTopics(tt.topics, tt.limit); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestOutcomeAndKind(t *testing.T) {
	tests := []struct {
		resp wire.Response
		want string
	}{
		{wire.OK(), "ok"},
		{wire.Fail(), "no"},
		{wire.ErrorResponse(wire.ErrNotLeader, ""), "not_leader"},
		{wire.ErrorResponse(wire.ErrStaleSeq, ""), "stale_seq"},
		{wire.ErrorResponse("from_the_future", ""), "other"},
	}
	for _, tt := range tests {
		if got := outcomeLabels[OutcomeOf(tt.resp)]; got != tt.want {
			t.Errorf("OutcomeOf(%+v) = %s, want %s", tt.resp, got, tt.want)
		}
	}
	if k := KindOf("message", "PUT"); k != KindMessagePut {
		t.Errorf("KindOf(message, PUT) = %d", k)
	}
	if k := KindOf("message", "DELETE"); k != KindInvalid {
		t.Errorf("KindOf(message, DELETE) = %d, want invalid", k)
	}
}

// TestOutcomesCoverWireCodes: every error code the protocol defines has
// its own outcome label (none falls into "other").
func TestOutcomesCoverWireCodes(t *testing.T) {
	for _, code := range wire.ErrorCodes() {
		if o := OutcomeOf(wire.ErrorResponse(code, "")); outcomeLabels[o] != code {
			t.Errorf("error code %q has no outcome label of its own", code)
		}
	}
}

// BenchmarkObserveRequest is the hot path's whole cost per answer: one
// counter and one histogram observation, no allocation.
func BenchmarkObserveRequest(b *testing.B) {
	m := New(nil, Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest(KindMessagePut, OutcomeOK, 3*time.Millisecond)
		}
	})
}

// TestObserveAllocatesNothing keeps the hot path allocation-free.
func TestObserveAllocatesNothing(t *testing.T) {
	m := New(nil, Options{})
	allocs := testing.AllocsPerRun(1000, func() {
		m.ObserveRequest(KindMessagePut, OutcomeOf(wire.OK()), time.Millisecond)
		m.ObserveLogCommit(time.Millisecond, 7)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per observation, want 0", allocs)
	}
}
