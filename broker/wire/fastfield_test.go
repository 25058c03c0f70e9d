package wire

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzFastFields: the direct decoding of plain strings and all-digit seqs
// agrees with json.Unmarshal on every valid JSON value from valid UTF-8,
// which is what DecodeRequest hands them.
func FuzzFastFields(f *testing.F) {
	for _, s := range []string{
		`"orders"`, `""`, `"a\"b"`, `"\\"`, `"\u00e9"`, `"é"`, `"x\n"`, `"\/"`,
		`1`, `0`, `18446744073709551615`, `18446744073709551616`, `-1`, `1.5`, `1e3`, `"7"`,
		`null`, `true`, `[]`, `{}`, ` "padded" `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !utf8.Valid(raw) || !json.Valid(raw) {
			return
		}
		var want string
		werr := json.Unmarshal(raw, &want)
		got, gerr := jsonString(raw)
		if (werr == nil) != (gerr == nil) || got != want {
			t.Fatalf("jsonString(%q) = %q, %v; json.Unmarshal: %q, %v", raw, got, gerr, want, werr)
		}
		var wantSeq uint64
		werr = json.Unmarshal(raw, &wantSeq)
		gotSeq, derr := seqField(raw)
		if (werr == nil) != (derr == nil) || gotSeq != wantSeq {
			t.Fatalf("seqField(%q) = %d, %v; json.Unmarshal: %d, %v", raw, gotSeq, derr, wantSeq, werr)
		}
	})
}
