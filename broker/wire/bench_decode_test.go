package wire

import (
	"strings"
	"testing"
)

// BenchmarkDecodeRequest decodes the PUT a producer sends most: a 256-byte
// message with a client id and seq (the exactly-once fields).
func BenchmarkDecodeRequest(b *testing.B) {
	frame := []byte(`{"type":"message","method":"PUT","topic":"orders","message":"` + strings.Repeat("x", 256) +
		`","client_id":"loadgen-17-3f9c2a","seq":123456}`)
	lim := Limits{MaxRequestBytes: 1 << 20, MaxMessageBytes: 1 << 20, MaxTopicBytes: 255, MaxClientIDBytes: 256}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := DecodeRequest(frame, lim); err != nil {
			b.Fatal(err)
		}
	}
}
