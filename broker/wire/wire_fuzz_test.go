package wire

import (
	"runtime"
	"testing"
)

// fuzzLimits are small so the fuzzer reaches every limit branch quickly.
var fuzzLimits = Limits{MaxRequestBytes: 4096, MaxMessageBytes: 1024, MaxTopicBytes: 64, MaxClientIDBytes: 64}

// maxDecodeAllocBytes bounds what one DecodeRequest may allocate: the frame
// is at most MaxRequestBytes, so a small multiple of it plus a fixed
// allowance for the decoder's own structures (and the fuzz worker's
// background work, which shares the counter).
const maxDecodeAllocBytes = 64*4096 + 1<<20

// FuzzDecodeRequest: DecodeRequest never panics, allocates a bounded amount,
// refuses frames over the limit before parsing them, and whatever it accepts
// is a valid request that survives a round trip through the client's JSON.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"topic","method":"GET"}`,
		`{"type":"topic","method":"PUT","topic":"t"}`,
		`{"type":"message","method":"PUT","topic":"t","message":"m"}`,
		`{"type":"message","method":"PUT","topic":"t","message":""}`,
		`{"type":"message","method":"GET","topic":"t","client_id":"c-1","seq":7}`,
		`{"type":"message","method":"PUT","topic":"é","message":"\u00e9\n","client_id":"c","seq":18446744073709551615}`,
		`{"type":"status","method":"GET"}`,
		`{"client_id":"c","type":"topic","method":"GET"}`,
		`{"client_id":"c","type":"message","method":"GET","topic":"t"}`,
		`{"type":"snapshot","method":"PUT"}`,
		`{"type":"message","method":"GET","topic":"t","seq":1}`,
		`{"type":"message","method":"GET","topic":"t","client_id":"c","seq":0}`,
		`{"type":"message","method":"GET","topic":"t","client_id":"c","seq":-1}`,
		`{"type":"message","method":"GET","topic":"t","client_id":"c","seq":1.5}`,
		`{"type":"topic","method":"GET"} {}`,
		`{"type":"topic","method":"GET","mesage":"x"}`,
		`{"type":1,"method":"GET"}`,
		`[1,2,3]`,
		`null`,
		`"x"`,
		`{`,
		"\xff\xfe",
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		req, derr := DecodeRequest(frame, fuzzLimits)
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > maxDecodeAllocBytes {
			t.Fatalf("decoding a %d-byte frame allocated %d bytes (limit %d)", len(frame), got, maxDecodeAllocBytes)
		}
		if len(frame) > fuzzLimits.MaxRequestBytes {
			if derr == nil || derr.Code != ErrTooLarge {
				t.Fatalf("%d-byte frame over the %d-byte limit: got %v, want %s", len(frame), fuzzLimits.MaxRequestBytes, derr, ErrTooLarge)
			}
			return
		}
		if derr != nil {
			if derr.Code != ErrBadRequest && derr.Code != ErrTooLarge {
				t.Fatalf("decode error code %q is neither %s nor %s", derr.Code, ErrBadRequest, ErrTooLarge)
			}
			if derr.Detail == "" {
				t.Fatalf("decode error %q has no detail", derr.Code)
			}
			return
		}
		checkAccepted(t, req)
		// Re-encode as every client does and decode again: same request.
		b := EncodeRequest(req)
		again, derr := DecodeRequest(b, Limits{})
		if derr != nil {
			t.Fatalf("re-encoded accepted request %s refused: %v", b, derr)
		}
		if again != req {
			t.Fatalf("round trip changed the request:\n first %+v\nsecond %+v", req, again)
		}
	})
}

func checkAccepted(t *testing.T, req Request) {
	t.Helper()
	if req.Method != MethodGet && req.Method != MethodPut {
		t.Fatalf("accepted method %q", req.Method)
	}
	switch req.Type {
	case TypeTopic, TypeMessage, TypeStatus, TypeSnapshot:
	default:
		t.Fatalf("accepted type %q", req.Type)
	}
	needTopic := req.Type == TypeMessage || (req.Type == TypeTopic && req.Method == MethodPut)
	if needTopic != (req.Topic != "") {
		t.Fatalf("%s %s with topic %q", req.Type, req.Method, req.Topic)
	}
	if len(req.Topic) > fuzzLimits.MaxTopicBytes || len(req.Message) > fuzzLimits.MaxMessageBytes || len(req.ClientID) > fuzzLimits.MaxClientIDBytes {
		t.Fatalf("accepted a field over its limit: %+v", req)
	}
	if (req.HasSession && (req.ClientID == "" || req.Seq == 0)) || (!req.HasSession && (req.Seq != 0 || (req.ClientID != "" && req.Mutates()))) {
		t.Fatalf("inconsistent session fields: %+v", req)
	}
}
