package main

import (
	"strings"
	"testing"
)

func TestInterspersed(t *testing.T) {
	tests := []struct{ in, want string }{
		{"raftmq", "raftmq"},
		{"raftmq status", "raftmq status"},
		{"raftmq topic create q --servers a:1", "raftmq topic create --servers a:1 -- q"},
		{"raftmq topic create --servers a:1 q", "raftmq topic create --servers a:1 -- q"},
		{"raftmq --log-level debug topic list --json", "raftmq --log-level debug topic list --json"},
		{"raftmq produce m1 -t q m2 --json --timeout=3s", "raftmq produce -t q --json --timeout=3s -- m1 m2"},
		{"raftmq produce -t q -5 --bogus", "raftmq produce -t q -5 --bogus"},
		{"raftmq produce -t q - x", "raftmq produce -t q -- - x"},
		{"raftmq produce -t q -- --json", "raftmq produce -t q -- --json"},
		{"raftmq consume -t q -n 0 --follow", "raftmq consume -t q -n 0 --follow"},
		{"raftmq topic create q --help", "raftmq topic create --help -- q"},
		{"raftmq topic", "raftmq topic"},
		{"raftmq unknown x --json", "raftmq unknown x --json"},
		{"raftmq -- topic", "raftmq -- topic"},
		{"raftmq serve --id 1 --data-dir d", "raftmq serve --id 1 --data-dir d"},
	}
	app := newApp(env{})
	for _, tt := range tests {
		got := strings.Join(interspersed(app, strings.Fields(tt.in)), " ")
		if got != tt.want {
			t.Errorf("interspersed(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
