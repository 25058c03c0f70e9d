package raftlog

import (
	"reflect"
	"testing"
)

func termEnts(term uint64, lo, hi uint64) []Entry {
	var out []Entry
	for i := lo; i <= hi; i++ {
		out = append(out, Entry{Index: i, Term: term, Data: []byte("xx")})
	}
	return out
}

func TestMergeMessages(t *testing.T) {
	app := func(to, index, logTerm uint64, es []Entry, commit uint64) Message {
		return Message{Type: MsgApp, From: 1, To: to, Term: 2, Index: index, LogTerm: logTerm, Entries: es, Commit: commit}
	}
	ack := func(to, index uint64) Message {
		return Message{Type: MsgAppResp, From: 1, To: to, Term: 2, Index: index}
	}
	hb := Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 2}
	for _, tc := range []struct {
		name string
		in   []Message
		want []Message
		max  uint64
	}{
		{"contiguous appends to one peer merge", []Message{app(2, 3, 1, termEnts(2, 4, 5), 3), app(3, 3, 1, termEnts(2, 4, 5), 3), app(2, 5, 2, termEnts(2, 6, 6), 4)},
			[]Message{app(2, 3, 1, termEnts(2, 4, 6), 4), app(3, 3, 1, termEnts(2, 4, 5), 3)}, 1000},
		{"an empty append then entries", []Message{app(2, 5, 2, nil, 3), app(2, 5, 2, termEnts(2, 6, 7), 5)},
			[]Message{app(2, 5, 2, termEnts(2, 6, 7), 5)}, 1000},
		{"a gap does not merge", []Message{app(2, 3, 1, termEnts(2, 4, 5), 3), app(2, 6, 2, termEnts(2, 7, 7), 4)},
			[]Message{app(2, 3, 1, termEnts(2, 4, 5), 3), app(2, 6, 2, termEnts(2, 7, 7), 4)}, 1000},
		{"the byte bound stops a merge", []Message{app(2, 3, 1, termEnts(2, 4, 5), 3), app(2, 5, 2, termEnts(2, 6, 6), 4)},
			[]Message{app(2, 3, 1, termEnts(2, 4, 5), 3), app(2, 5, 2, termEnts(2, 6, 6), 4)}, 100}, // 3 entries: 6 bytes of data + 3 × 32 overhead
		{"a heartbeat in between stops a merge", []Message{app(2, 3, 1, termEnts(2, 4, 5), 3), hb, app(2, 5, 2, termEnts(2, 6, 6), 4)},
			[]Message{app(2, 3, 1, termEnts(2, 4, 5), 3), hb, app(2, 5, 2, termEnts(2, 6, 6), 4)}, 1000},
		{"acks keep the highest index", []Message{ack(1, 5), ack(1, 9), ack(1, 7)}, []Message{ack(1, 9)}, 1000},
		{"a reject is kept", []Message{ack(1, 5), {Type: MsgAppResp, From: 1, To: 1, Term: 2, Index: 6, Reject: true, RejectHint: 3}, ack(1, 9)},
			[]Message{ack(1, 5), {Type: MsgAppResp, From: 1, To: 1, Term: 2, Index: 6, Reject: true, RejectHint: 3}, ack(1, 9)}, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]Message(nil), tc.in...)
			first := append([]Entry(nil), in[0].Entries...)
			got := mergeMessages(in, tc.max)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(tc.in[0].Entries, first) {
				t.Fatalf("the input's entries changed: %+v", tc.in[0].Entries)
			}
		})
	}
}
