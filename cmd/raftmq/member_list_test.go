package main

import (
	"testing"

	"github.com/raftmq/raftmq/client/clienttest"
)

// TestMemberListTable: `member list` prints one aligned row per member,
// client and peer address, role, match index and lag; --json prints the
// issue's shape.
func TestMemberListTable(t *testing.T) {
	members := `{"success":true,"members":[` +
		`{"id":0,"ip":"10.0.0.1","port":5550,"internal_port":5560,"role":"voter","match_index":120,"lag":0},` +
		`{"id":12,"ip":"10.0.0.12","port":5551,"internal_port":5561,"role":"learner","match_index":7,"lag":113}]}`
	b := clienttest.NewBroker(t, clienttest.Step{Reply: members}, clienttest.Step{Reply: members})
	r := runner{t: t}.run("member", "list", "--servers", b.Addr)
	want := "" +
		"ID  CLIENT          PEER            ROLE     MATCH  LAG\n" +
		"0   10.0.0.1:5550   10.0.0.1:5560   voter    120    0\n" +
		"12  10.0.0.12:5551  10.0.0.12:5561  learner  7      113\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("member list: exit %d\n%s\nwant:\n%s(stderr %q)", r.code, r.stdout, want, r.stderr)
	}
	r = runner{t: t}.run("member", "list", "--json", "--servers", b.Addr)
	wantJSON := `{"members":[` +
		`{"id":0,"ip":"10.0.0.1","port":5550,"internal_port":5560,"role":"voter","match_index":120,"lag":0},` +
		`{"id":12,"ip":"10.0.0.12","port":5551,"internal_port":5561,"role":"learner","match_index":7,"lag":113}]}` + "\n"
	if r.code != 0 || r.stdout != wantJSON {
		t.Fatalf("member list --json: exit %d\n%s\nwant:\n%s", r.code, r.stdout, wantJSON)
	}
}
