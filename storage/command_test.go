package storage

import (
	"errors"
	"strings"
	"testing"
)

func TestCommandRoundTrip(t *testing.T) {
	tests := []Command{
		create("t"),
		put("topic", "hello"),
		put("topic", ""),
		pop("t"),
		withSession(put("t", strings.Repeat("x", 300)), "client-1", 1<<40),
		{Op: OpPop, Topic: "ü", ClientID: "c", Seq: 0, ProposalID: ^uint64(0)},
	}
	for _, c := range tests {
		got, err := DecodeCommand(EncodeCommand(c))
		if err != nil || got != c {
			t.Fatalf("round trip of %+v = %+v, %v", c, got, err)
		}
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	good := EncodeCommand(withSession(put("t", "m"), "c", 3))
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 0", append([]byte{0}, good[1:]...)},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"op 0", append([]byte{1, 0}, good[2:]...)},
		{"op 4", append([]byte{1, 4}, good[2:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte{}, good...), 0)},
		{"empty topic", EncodeCommand(Command{Op: OpCreateTopic})},
		{"topic too long", EncodeCommand(create(strings.Repeat("t", maxCommandTopicBytes+1)))},
		{"huge length", []byte{1, 2, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"varint overflow", []byte{1, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	for _, tc := range tests {
		if c, err := DecodeCommand(tc.b); !errors.Is(err, ErrBadCommand) {
			t.Fatalf("%s: DecodeCommand = %+v, %v; want ErrBadCommand", tc.name, c, err)
		}
	}
}

// FuzzDecodeCommand: DecodeCommand never panics, and whatever it accepts
// re-encodes to a command that decodes to the same value.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []Command{create("t"), put("t", "m"), pop("t"), withSession(put("q", "msg"), "client", 9)} {
		f.Add(EncodeCommand(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		if c.Topic == "" || c.Op < OpCreateTopic || c.Op > OpPop {
			t.Fatalf("accepted invalid command %+v", c)
		}
		again, err := DecodeCommand(EncodeCommand(c))
		if err != nil || again != c {
			t.Fatalf("re-encode of %+v decoded to %+v, %v", c, again, err)
		}
	})
}
