package broker

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/metricstest"
	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/raftlog"
)

// TestMetricsSingleNode scrapes /metrics of a running broker and checks
// that the numbers follow what clients do: request counters by outcome,
// topic depth and bytes, raft.db commits, the topic label bounded, and the
// health endpoints.
func TestMetricsSingleNode(t *testing.T) {
	cfg := testCluster(t, 1)[0]
	cfg.MetricsListen = "127.0.0.1:0"
	cfg.MetricsTopics = 2
	r := startBroker(t, cfg)
	c := dialRaw(t, cfg.Self().ClientAddr())
	c.status() // serving
	addr := r.b.MetricsAddr()
	if addr == "" {
		t.Fatal("metrics server not started")
	}

	before := metricstest.Scrape(t, addr)
	if v, _ := before.Value("raftmq_raft_is_leader"); v != 1 {
		t.Fatalf("raftmq_raft_is_leader = %v on the only node, want 1", v)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "raftmq_disk_free_bytes", "raftmq_raft_term", "go_memstats_heap_alloc_bytes"} {
		if v, ok := before.Value(name); !ok || v <= 0 {
			t.Errorf("%s = %v (present %v), want > 0", name, v, ok)
		}
	}
	if v, ok := before.Value("raftmq_anon_rss_bytes"); runtime.GOOS == "linux" && (!ok || v <= 0) {
		t.Errorf("raftmq_anon_rss_bytes = %v (present %v), want > 0", v, ok)
	}
	for _, name := range []string{"raftmq_snapshot_in_progress", "raftmq_snapshot_written_bytes", "raftmq_snapshot_sends"} {
		if v, ok := before.Value(name); !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0 with no snapshot under way", name, v, ok)
		}
	}
	putsOK := func(f metricstest.Families) float64 {
		v, _ := f.Value("raftmq_requests_total", "type", "message", "method", "PUT", "outcome", "ok")
		return v
	}
	commits := func(f metricstest.Families) float64 {
		v, _ := f.Value("raftmq_raft_log_commit_seconds")
		return v
	}

	for _, topic := range []string{"a", "b", "c"} {
		c.do(`{"type":"topic","method":"PUT","topic":"` + topic + `","client_id":"t` + topic + `","seq":1}`)
	}
	c.do(`{"type":"message","method":"PUT","topic":"a","message":"hello","client_id":"m","seq":1}`)
	c.do(`{"type":"message","method":"PUT","topic":"a","message":"world!","client_id":"m","seq":2}`)
	c.do(`{"type":"message","method":"PUT","topic":"c","message":"xyz","client_id":"m","seq":3}`)
	c.do(`{"type":"message","method":"PUT","topic":"nope","message":"x","client_id":"m","seq":4}`)
	c.do(`{"type":"message","method":"PUT","topic":"a","mesage":"typo","client_id":"m","seq":5}`)

	after := metricstest.Scrape(t, addr)
	if got := putsOK(after) - putsOK(before); got != 3 {
		t.Errorf("message PUT ok grew by %v, want 3", got)
	}
	if v, _ := after.Value("raftmq_requests_total", "type", "message", "method", "PUT", "outcome", "no"); v != 1 {
		t.Errorf("message PUT no = %v, want 1 (no such topic)", v)
	}
	// The misspelt field is refused before its type is known.
	if v, _ := after.Value("raftmq_requests_total", "type", "invalid", "outcome", "bad_request"); v != 1 {
		t.Errorf("invalid bad_request = %v, want 1", v)
	}
	if v, _ := after.Value("raftmq_request_duration_seconds", "type", "message", "method", "PUT"); v != 4 {
		t.Errorf("message PUT durations observed %v, want 4", v)
	}
	if commits(after) <= commits(before) {
		t.Errorf("raft.db commits observed: %v then %v, want growth", commits(before), commits(after))
	}
	if v, _ := after.Value("raftmq_raft_entries_per_commit"); v != commits(after) {
		t.Errorf("entries_per_commit has %v samples, log_commit_seconds %v: one each per commit", v, commits(after))
	}
	// Two topics get their own series (creation order); "c" goes to other.
	if v, _ := after.Value("raftmq_topic_messages", "topic", "a", "state", "ready"); v != 2 {
		t.Errorf("topic a ready = %v, want 2", v)
	}
	if v, _ := after.Value("raftmq_topic_bytes", "topic", "a"); v != 11 {
		t.Errorf("topic a bytes = %v, want 11", v)
	}
	if v, _ := after.Value("raftmq_topic_messages", "topic", "other", "state", "ready"); v != 1 {
		t.Errorf("topic other ready = %v, want 1 (topic c beyond the limit)", v)
	}
	if got := after.LabelValues("raftmq_topic_bytes", "topic"); strings.Join(got, ",") != "a,b,other" {
		t.Errorf("topic labels %v, want [a b other]", got)
	}

	c.do(`{"type":"message","method":"GET","topic":"a","client_id":"m","seq":6}`)
	popped := metricstest.Scrape(t, addr)
	if v, _ := popped.Value("raftmq_topic_messages", "topic", "a", "state", "ready"); v != 1 {
		t.Errorf("topic a ready after a pop = %v, want 1", v)
	}
	if resp := c.do(`{"type":"message","method":"RECEIVE","topic":"a","client_id":"m","seq":7}`); resp["success"] != true {
		t.Fatalf("receive: %v", resp)
	}
	leased := metricstest.Scrape(t, addr)
	for state, want := range map[string]float64{"ready": 0, "leased": 1, "delayed": 0} {
		if v, ok := leased.Value("raftmq_topic_messages", "topic", "a", "state", state); !ok || v != want {
			t.Errorf("topic a %s after a receive = %v (present %v), want %v", state, v, ok, want)
		}
	}

	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusOK} {
		if code, body, err := metricstest.Get(addr, path); err != nil || code != want {
			t.Errorf("%s: %d %q %v, want %d", path, code, body, err, want)
		}
	}
}

// TestMetricsCluster: in a three-node cluster exactly one node reports
// is_leader 1, the leader reports both followers' lag, and every node is
// ready. A node left without a majority stops being ready (/readyz 503)
// and counts the leader change.
func TestMetricsCluster(t *testing.T) {
	cfgs := testCluster(t, 3)
	runs := make([]*running, 3)
	clients := map[int]*rawClient{}
	for i := range cfgs {
		cfgs[i].MetricsListen = "127.0.0.1:0"
		runs[i] = startBroker(t, cfgs[i])
		clients[i] = dialRaw(t, cfgs[i].Self().ClientAddr())
	}
	lead := leaderOf(t, clients)
	addrs := make([]string, 3)
	for i, r := range runs {
		testwait.For(t, 5*time.Second, "metrics server", func() bool { return r.b.MetricsAddr() != "" })
		addrs[i] = r.b.MetricsAddr()
	}
	testwait.Err(t, 10*time.Second, "one leader in the metrics, all ready, lag of both followers", func() error {
		leaders := 0
		for i, a := range addrs {
			f, err := metricstest.TryScrape(a)
			if err != nil {
				return err
			}
			v, _ := f.Value("raftmq_raft_is_leader")
			leaders += int(v)
			if ready, _ := f.Value("raftmq_ready"); ready != 1 {
				return fmt.Errorf("node %d not ready", i)
			}
			if code, body, _ := metricstest.Get(a, "/readyz"); code != http.StatusOK {
				return fmt.Errorf("node %d /readyz %d %s", i, code, body)
			}
			if i == lead {
				if got := f.LabelValues("raftmq_raft_peer_lag_entries", "peer"); len(got) != 2 {
					return fmt.Errorf("leader reports lag of peers %v, want 2", got)
				}
			} else if v != 0 {
				return fmt.Errorf("follower %d reports is_leader %v", i, v)
			}
		}
		if leaders != 1 {
			return fmt.Errorf("%d nodes report is_leader 1", leaders)
		}
		return nil
	})

	survivor := (lead + 1) % 3
	changes := func() float64 {
		v, _ := metricstest.Scrape(t, addrs[survivor]).Value("raftmq_raft_leader_changes_total")
		return v
	}
	changesBefore := changes()
	for i := range runs {
		if i != survivor {
			runs[i].stop(t)
		}
	}
	testwait.For(t, 10*time.Second, "the survivor's /readyz to answer 503", func() bool {
		code, _, err := metricstest.Get(addrs[survivor], "/readyz")
		return err == nil && code == http.StatusServiceUnavailable
	})
	if code, _, err := metricstest.Get(addrs[survivor], "/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz of a serving node without a majority: %d %v, want 200", code, err)
	}
	testwait.For(t, 10*time.Second, "the survivor to count the leader change", func() bool { return changes() > changesBefore })
}

// TestReadyzRecovering: a node started with --recover is not ready until it
// has caught up; here its peers are down, so it stays recovering and says
// so.
func TestReadyzRecovering(t *testing.T) {
	cfgs := testCluster(t, 3)
	cfg := cfgs[2]
	cfg.MetricsListen = "127.0.0.1:0"
	cfg.Recover = true
	r := startBroker(t, cfg)
	testwait.For(t, 5*time.Second, "metrics server", func() bool { return r.b.MetricsAddr() != "" })
	code, body, err := metricstest.Get(r.b.MetricsAddr(), "/readyz")
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "recovering") {
		t.Fatalf("/readyz of a recovering node: %d %q %v, want 503 naming recovery", code, body, err)
	}
}

func TestReadiness(t *testing.T) {
	leader := raftlog.Status{Role: raftlog.RoleLeader, ID: 1, Lead: 1, Commit: 5, LeaderActive: true}
	follower := raftlog.Status{Role: raftlog.RoleFollower, ID: 2, Lead: 1, Commit: 5, LeaderActive: true}
	tests := []struct {
		name    string
		st      raftlog.Status
		applied uint64
		ready   bool
		reason  string
	}{
		{"leader with a quorum", leader, 5, true, ""},
		{"follower hearing its leader", follower, 5, true, ""},
		{"leader without a quorum", with(leader, func(s *raftlog.Status) { s.LeaderActive = false }), 5, false, "without a quorum"},
		{"no leader", with(follower, func(s *raftlog.Status) { s.Lead = raftlog.None; s.LeaderActive = false }), 5, false, "no leader"},
		{"leader gone silent", with(follower, func(s *raftlog.Status) { s.LeaderActive = false }), 5, false, "not heard"},
		{"behind its commit index", follower, 4, false, "applied index 4 is behind commit index 5"},
		{"recovering", with(follower, func(s *raftlog.Status) { s.Recovering = true }), 5, false, "recovering"},
	}
	for _, tt := range tests {
		ready, reason := readiness(tt.st, tt.applied)
		if ready != tt.ready || !strings.Contains(reason, tt.reason) || (ready && reason != "") {
			t.Errorf("%s: ready %v %q, want %v %q", tt.name, ready, reason, tt.ready, tt.reason)
		}
	}
}

func with(s raftlog.Status, edit func(*raftlog.Status)) raftlog.Status {
	edit(&s)
	return s
}
