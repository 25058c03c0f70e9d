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
		{Op: OpReceive, Topic: "t", TimeMs: 1_700_000_000_000, LeaseMs: 30000, Wait: true},
		{Op: OpNack, Topic: "t", Receipt: "1-2-3", DelayMs: 5, ClientID: "c", Seq: 4},
		{Op: OpExtend, Topic: "t", Receipt: "1-2-3", LeaseMs: 100},
		{Op: OpAck, Topic: "t", Receipt: "0-0-1"},
		{Op: OpCreateTopic, Topic: "t", MaxDeliveries: 3, DeadLetter: "dlq"},
		{Op: OpTick, TimeMs: 42},
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
		{"version 3", append([]byte{3}, good[1:]...)},
		{"op 0", append([]byte{2, 0}, good[2:]...)},
		{"op 9", append([]byte{2, 9}, good[2:]...)},
		{"version 1 op 4", v1Command(4, "t", "m")},
		{"version 1 trailing version 2 fields", append(v1Command(2, "t", "m"), 0, 0, 0, 0, 0, 0, 0)},
		{"unknown flag", func() []byte {
			b := EncodeCommand(put("t", "m"))
			b[len(b)-3] = 2 // flags, then two empty strings
			return b
		}()},
		{"empty topic receive", EncodeCommand(Command{Op: OpReceive})},
		{"receipt too long", EncodeCommand(Command{Op: OpAck, Topic: "t", Receipt: strings.Repeat("1", maxCommandReceiptBytes+1)})},
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

// v1Command encodes a command as brokers before leased delivery did.
func v1Command(op byte, topic, msg string) []byte {
	b := []byte{1, op, 0, 0}
	for _, s := range []string{topic, "", msg} {
		b = append(append(b, byte(len(s))), s...)
	}
	return b
}

// Logs written before leased delivery still apply.
func TestDecodeCommandVersion1(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want Command
	}{
		{v1Command(1, "t", ""), create("t")},
		{v1Command(2, "t", "m"), put("t", "m")},
		{v1Command(3, "t", ""), pop("t")},
	} {
		got, err := DecodeCommand(tc.b)
		if err != nil || got != tc.want {
			t.Fatalf("DecodeCommand(%x) = %+v, %v; want %+v", tc.b, got, err, tc.want)
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
		if (c.Topic == "" && c.Op != OpTick) || c.Op < OpCreateTopic || c.Op > OpTick {
			t.Fatalf("accepted invalid command %+v", c)
		}
		again, err := DecodeCommand(EncodeCommand(c))
		if err != nil || again != c {
			t.Fatalf("re-encode of %+v decoded to %+v, %v", c, again, err)
		}
	})
}
