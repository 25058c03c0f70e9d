package clienttest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/client/clienttest"
)

func TestMemorySemantics(t *testing.T) {
	m := clienttest.NewMemory()
	b := clienttest.NewBroker(t)
	b.SetHandler(m.Handle)
	c, err := client.New(client.Options{Servers: []string{b.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	steps := []struct {
		name string
		do   func() (any, error)
		want string
	}{
		{"put to missing topic", func() (any, error) { return c.Put(ctx, "q", "a") }, "false"},
		{"create", func() (any, error) { return c.CreateTopic(ctx, "q") }, "true"},
		{"create again", func() (any, error) { return c.CreateTopic(ctx, "q") }, "false"},
		{"create second", func() (any, error) { return c.CreateTopic(ctx, "p") }, "true"},
		{"put a", func() (any, error) { return c.Put(ctx, "q", "a") }, "true"},
		{"put b", func() (any, error) { return c.Put(ctx, "q", "b") }, "true"},
		{"list", func() (any, error) { return c.ListTopics(ctx) }, "[q p]"},
		{"pop a", func() (any, error) { m, ok, err := c.Pop(ctx, "q"); return fmt.Sprintf("%s %v", m, ok), err }, "a true"},
		{"pop b", func() (any, error) { m, ok, err := c.Pop(ctx, "q"); return fmt.Sprintf("%s %v", m, ok), err }, "b true"},
		{"pop empty", func() (any, error) { m, ok, err := c.Pop(ctx, "q"); return fmt.Sprintf("%s %v", m, ok), err }, " false"},
	}
	for _, s := range steps {
		got, err := s.do()
		if err != nil || fmt.Sprint(got) != s.want {
			t.Fatalf("%s = %v, %v; want %s", s.name, got, err, s.want)
		}
	}
	// A retried request (same client_id and seq) gets the first answer.
	put := wire.Request{Type: wire.TypeMessage, Method: wire.MethodPut, Topic: "q", Message: "x", ClientID: "r", Seq: 1, HasSession: true}
	first, again := m.Handle(put), m.Handle(put)
	if first.Reply != `{"success":true}` || again != first || m.Depth("q") != 1 {
		t.Fatalf("retry: %q then %q, depth %d; want one put", first.Reply, again.Reply, m.Depth("q"))
	}
}
