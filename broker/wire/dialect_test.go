package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDialect: a request that uses only the course's fields, or is not a
// JSON object, is a course request; anything beyond makes it raftmq's, also
// when the request is refused and when it is too large to decode.
func TestDialect(t *testing.T) {
	big := strings.Repeat("x", 5000) // over dialectLimits.MaxRequestBytes
	tests := []struct {
		frame string
		want  Dialect
		ok    bool // accepted
	}{
		{`{"type":"topic","method":"PUT","topic":"t"}`, DialectCourse, true},
		{`{"type":"message","method":"PUT","topic":"t","message":"m"}`, DialectCourse, true},
		{`{"type":"status","method":"GET"}`, DialectCourse, true},
		{`{"method":"GET"}`, DialectCourse, false},
		{`{"type":"topic"}`, DialectCourse, false},
		{`{"type":"message","method":"PUT","message":"m"}`, DialectCourse, false},
		{`{"type":"message","method":"PUT","topic":"t"}`, DialectCourse, false},
		{`{"type":"queue","method":"DELETE"}`, DialectCourse, false},
		{`{"type":1,"method":"GET"}`, DialectCourse, false},
		{`{"type":"topic","method":"GET"} {}`, DialectCourse, false},
		{`[1]`, DialectCourse, false},
		{`null`, DialectCourse, false},
		{`"x"`, DialectCourse, false},
		{`{`, DialectCourse, false},
		{`not json`, DialectCourse, false},
		{"\xff", DialectCourse, false},
		{``, DialectCourse, false},
		{`{"type":"message","method":"PUT","topic":"t","message":"` + big + `"}`, DialectCourse, false},

		{`{"type":"topic","method":"GET","client_id":"c"}`, DialectRaftmq, true},
		{`{"type":"topic","method":"PUT","topic":"t","client_id":"c","seq":1}`, DialectRaftmq, true},
		{`{"type":"snapshot","method":"PUT"}`, DialectRaftmq, true},
		{`{"type":"snapshot","method":"GET"}`, DialectRaftmq, false},
		{`{"method":"GET","client_id":"c"}`, DialectRaftmq, false},
		{`{"type":"message","method":"PUT","message":"m","client_id":"c","seq":1}`, DialectRaftmq, false},
		{`{"type":"message","method":"PUT","topic":"t","client_id":"c"}`, DialectRaftmq, false},
		{`{"type":"topic","method":"GET","mesage":"typo"}`, DialectRaftmq, false},
		{`{"type":"topic","method":"GET","seq":1}`, DialectRaftmq, false},
		{`{"client_id":"c","type":"topic"`, DialectRaftmq, false},
		{`{"type":"topic","method":"GET","client_id":"c"} {}`, DialectRaftmq, false},
		{`{"client_id":"c","seq":1,"type":"message","method":"PUT","topic":"t","message":"` + big + `"}`, DialectRaftmq, false},
		{`{"type":"snapshot","method":"PUT","message":"` + big + `"}`, DialectRaftmq, false},
		// raftmq's methods make a request raftmq's, even with only course fields.
		{`{"type":"message","method":"RECEIVE","topic":"t"}`, DialectRaftmq, true},
		{`{"type":"topic","method":"INFO","topic":"t"}`, DialectRaftmq, true},
		{`{"type":"message","method":"ACK","topic":"t"}`, DialectRaftmq, false},
		{`{"type":"message","method":"GET","topic":"t","wait_ms":100}`, DialectRaftmq, true},
	}
	for _, tt := range tests {
		req, derr := DecodeRequest([]byte(tt.frame), dialectLimits)
		name := tt.frame
		if len(name) > 80 {
			name = name[:80] + "..."
		}
		if req.Dialect != tt.want {
			t.Errorf("%s: dialect %v, want %v", name, req.Dialect, tt.want)
		}
		if (derr == nil) != tt.ok {
			t.Errorf("%s: error %v, want accepted %v", name, derr, tt.ok)
		}
	}
}

var dialectLimits = Limits{MaxRequestBytes: 4096, MaxMessageBytes: 1024, MaxTopicBytes: 64, MaxClientIDBytes: 64}

// TestResponseIn: a refusal is {"success":false} for a course request and
// keeps its code, detail and leader for a raftmq one; an executed request's
// answer is the same in both.
func TestResponseIn(t *testing.T) {
	notLeader := ErrorResponse(ErrNotLeader, "follower")
	notLeader.Leader = "127.0.0.1:5001"
	msg := "m"
	topics := []string{"a"}
	tests := []struct {
		resp           Response
		course, raftmq string
	}{
		{notLeader, `{"success":false}`, `{"success":false,"error":"not_leader","detail":"follower","leader":"127.0.0.1:5001"}`},
		{ErrorResponse(ErrBadRequest, "no type"), `{"success":false}`, `{"success":false,"error":"bad_request","detail":"no type"}`},
		{OK(), `{"success":true}`, `{"success":true}`},
		{Fail(), `{"success":false}`, `{"success":false}`},
		{Response{Success: true, Message: &msg}, `{"success":true,"message":"m"}`, `{"success":true,"message":"m"}`},
		{Response{Success: true, Topics: &topics}, `{"success":true,"topics":["a"]}`, `{"success":true,"topics":["a"]}`},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			d    Dialect
			want string
		}{{DialectCourse, tt.course}, {DialectRaftmq, tt.raftmq}} {
			b, err := json.Marshal(tt.resp.In(c.d))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.want {
				t.Errorf("%+v in %v: %s, want %s", tt.resp, c.d, b, c.want)
			}
		}
	}
}
