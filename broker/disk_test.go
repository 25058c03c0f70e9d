package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/metricstest"
	"github.com/raftmq/raftmq/internal/testwait"
)

// TestDiskGuardLeader: once the data directory grows past max_data_bytes,
// the leader answers puts and topic creation disk_full (the course dialect
// {"success":false}), keeps serving pops and reads, reports it in status
// and metrics, and takes puts again by itself when the guard clears.
func TestDiskGuardLeader(t *testing.T) {
	cfg := testCluster(t, 1)[0]
	cfg.MetricsListen = "127.0.0.1:0"
	cfg.MaxDataBytes = 1 << 20
	r := startBroker(t, cfg)
	c := dialRaw(t, cfg.Self().ClientAddr())
	if resp := c.do(`{"type":"topic","method":"PUT","topic":"q","client_id":"d","seq":1}`); resp["success"] != true {
		t.Fatalf("create topic: %v", resp)
	}
	msg := strings.Repeat("x", 16<<10)
	seq, acked := 1, 0
	var refused map[string]any
	for i := 0; i < 1000 && refused == nil; i++ {
		seq++
		resp := c.do(fmt.Sprintf(`{"type":"message","method":"PUT","topic":"q","message":"%s","client_id":"d","seq":%d}`, msg, seq))
		switch {
		case resp["success"] == true:
			acked++
		case resp["error"] == "disk_full":
			refused = resp
		default:
			t.Fatalf("put %d: %v", i, resp)
		}
	}
	if refused == nil {
		t.Fatalf("1000 puts of 16 KiB never refused with max_data_bytes 1 MiB; status %+v", r.b.Status())
	}
	if d, _ := refused["detail"].(string); !strings.Contains(d, "max_data_bytes") {
		t.Errorf("disk_full detail %q does not name max_data_bytes", d)
	}
	if acked == 0 {
		t.Fatal("no put was acknowledged before the guard tripped")
	}
	if resp := c.do(`{"type":"topic","method":"PUT","topic":"q2","client_id":"d","seq":` + fmt.Sprint(seq+1) + `}`); resp["error"] != "disk_full" {
		t.Errorf("topic creation while full: %v, want disk_full", resp)
	}
	if resp := c.do(`{"type":"topic","method":"PUT","topic":"q2"}`); len(resp) != 1 || resp["success"] != false {
		t.Errorf("course topic creation while full: %v, want exactly {\"success\":false}", resp)
	}
	if resp := c.do(`{"type":"message","method":"GET","topic":"q","client_id":"d","seq":` + fmt.Sprint(seq+2) + `}`); resp["success"] != true || resp["message"] != msg {
		t.Errorf("pop while full: %v, want the first message", resp)
	}
	if resp := c.do(`{"type":"topic","method":"GET"}`); resp["success"] != true {
		t.Errorf("topic list while full: %v", resp)
	}
	testwait.For(t, 5*time.Second, "status to show disk_full", func() bool { return c.status().DiskFull })
	st := c.status()
	if !st.DiskFull || !strings.Contains(st.DiskFullReason, "max_data_bytes") {
		t.Errorf("status while full: disk_full %v %q", st.DiskFull, st.DiskFullReason)
	}
	f := metricstest.Scrape(t, r.b.MetricsAddr())
	if v, _ := f.Value("raftmq_disk_full"); v != 1 {
		t.Errorf("raftmq_disk_full = %v, want 1", v)
	}
	if v, _ := f.Value("raftmq_requests_total", "type", "message", "method", "PUT", "outcome", "disk_full"); v != 1 {
		t.Errorf("message PUT disk_full = %v, want 1", v)
	}

	seq += 2
	r.b.disk.maxData.Store(0) // the operator lifts the limit
	testwait.Err(t, 5*time.Second, "puts to resume", func() error {
		seq++
		resp := c.do(fmt.Sprintf(`{"type":"message","method":"PUT","topic":"q","message":"after","client_id":"d","seq":%d}`, seq))
		if resp["success"] != true {
			return fmt.Errorf("put: %v", resp)
		}
		return nil
	})
	// Status is published once per tick: it may lag the guard by one.
	testwait.For(t, 5*time.Second, "status to clear disk_full", func() bool { return !c.status().DiskFull })
}
