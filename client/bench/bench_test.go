package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/client/clienttest"
)

func TestMeasureFsync(t *testing.T) {
	dir := t.TempDir()
	r, err := MeasureFsync(dir, 20)
	if err != nil {
		t.Fatal(err)
	}
	if r.Dir != dir || r.Count != 20 || r.PerSec <= 0 || r.Elapsed <= 0 {
		t.Fatalf("MeasureFsync = %+v", r)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("probe left %d files behind", len(left))
	}
	if _, err := MeasureFsync(dir+"/missing", 1); err == nil {
		t.Fatal("MeasureFsync on a missing dir: want an error")
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Clients: []int{1, 32}, SizeBytes: 256, Duration: time.Second, Topic: "b", FsyncCount: 10}
	tests := []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"good", func(*Config) {}, ""},
		{"messages instead of duration", func(c *Config) { c.Messages, c.Duration = 10, 0 }, ""},
		{"no clients", func(c *Config) { c.Clients = nil }, "at least one client count"},
		{"zero clients", func(c *Config) { c.Clients = []int{0} }, "clients: 0 is not in 1..1024"},
		{"huge size", func(c *Config) { c.SizeBytes = MaxSizeBytes + 1 }, "size"},
		{"no budget", func(c *Config) { c.Duration = 0 }, "positive message count or duration"},
		{"no topic", func(c *Config) { c.Topic = "" }, "topic"},
		{"no fsync count", func(c *Config) { c.FsyncCount = 0 }, "fsync count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mod(&c)
			err := c.Validate()
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("validate = %v; want %q", err, tt.want)
			}
		})
	}
}

func TestRunAgainstFakeBroker(t *testing.T) {
	mem := clienttest.NewMemory()
	b := clienttest.NewBroker(t)
	b.SetHandler(mem.Handle)
	cfg := Config{
		Client:    client.Options{Servers: []string{b.Addr}},
		Clients:   []int{1, 3},
		SizeBytes: 100, Messages: 30, Topic: "bench",
		FsyncDir: t.TempDir(), FsyncCount: 5, Seed: 7,
	}
	var progressed []int
	rep, err := Run(context.Background(), cfg, func(r Result) { progressed = append(progressed, r.Clients) })
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 || len(progressed) != 2 || rep.Fsync.Count != 5 {
		t.Fatalf("report %+v, progress %v", rep, progressed)
	}
	for _, r := range rep.Results {
		// Memory counts one sync per entry, so puts/fsync is exactly 1.
		if r.Puts != 30 || r.Errors != 0 || !r.SyncsKnown || r.LogSyncs != 30 || r.PutsPerSync != 1 || r.PutsPerSec <= 0 || r.P99 < r.P50 {
			t.Errorf("result %+v", r)
		}
	}
	if got := mem.Depth("bench"); got != 60 {
		t.Fatalf("queue depth %d, want 60 puts", got)
	}
	// One Client per worker: each warms up on its own socket, and each
	// socket puts with its own session.
	warmups, sessionOf := 0, map[string]string{}
	for _, s := range b.Requests() {
		switch {
		case s.Req.Type == "topic" && s.Req.Method == "GET":
			warmups++
		case s.Req.Type == "message":
			if len(s.Req.Message) != 100 {
				t.Fatalf("message of %d bytes, want 100", len(s.Req.Message))
			}
			if id, ok := sessionOf[s.Identity]; ok && id != s.Req.ClientID {
				t.Fatalf("one socket used client ids %q and %q", id, s.Req.ClientID)
			}
			sessionOf[s.Identity] = s.Req.ClientID
		}
	}
	ids := map[string]bool{}
	for _, id := range sessionOf {
		ids[id] = true
	}
	if warmups != 4 || len(ids) != len(sessionOf) {
		t.Fatalf("%d warm-ups, %d sockets with %d client ids; want 4 warm-ups (1+3 workers), one id per socket", warmups, len(sessionOf), len(ids))
	}

	// Duration mode stops by itself.
	cfg.Messages, cfg.Duration, cfg.Clients = 0, 100*time.Millisecond, []int{2}
	rep, err = Run(context.Background(), cfg, nil)
	if err != nil || len(rep.Results) != 1 || rep.Results[0].Puts == 0 || rep.Results[0].Errors != 0 {
		t.Fatalf("duration run = %+v, %v", rep, err)
	}
}
