package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultValidates(t *testing.T) {
	n := Default()
	if err := n.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if got := n.Self().ClientAddr(); got != DefaultClientAddr {
		t.Errorf("Default().Self().ClientAddr() = %q, want DefaultClientAddr %q", got, DefaultClientAddr)
	}
	if got := n.Self().PeerAddr(); got != "127.0.0.1:5560" {
		t.Errorf("Default().Self().PeerAddr() = %q", got)
	}
}

func TestValidateBounds(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Node)
		field string // "" = valid
		want  string // substring of the message
	}{
		{"default", func(n *Node) {}, "", ""},
		{"tick at min", func(n *Node) { n.TickInterval = time.Millisecond; n.RequestTimeout = time.Second }, "", ""},
		{"tick below min", func(n *Node) { n.TickInterval = time.Microsecond }, "tick_interval", "must be in 1ms..10s"},
		{"tick zero", func(n *Node) { n.TickInterval = 0 }, "tick_interval", "(0s)"},
		{"tick at max", func(n *Node) {
			n.TickInterval = 10 * time.Second
			n.RequestTimeout = 10 * time.Minute
			n.ElectionTicks = 2
		}, "", ""},
		{"tick above max", func(n *Node) { n.TickInterval = 11 * time.Second }, "tick_interval", "1ms..10s"},
		{"election ticks 1", func(n *Node) { n.ElectionTicks = 1; n.HeartbeatTicks = 0 }, "election_ticks", "(1) must be in 2..1000"},
		{"election ticks 2", func(n *Node) { n.ElectionTicks = 2 }, "", ""},
		{"election ticks 1000", func(n *Node) { n.ElectionTicks = 1000; n.TickInterval = time.Millisecond }, "", ""},
		{"election ticks 1001", func(n *Node) { n.ElectionTicks = 1001; n.TickInterval = time.Millisecond }, "election_ticks", "2..1000"},
		{"election equals heartbeat", func(n *Node) { n.HeartbeatTicks = 10 }, "election_ticks", "election_ticks (10) must be greater than heartbeat_ticks (10)"},
		{"heartbeat zero", func(n *Node) { n.HeartbeatTicks = 0 }, "heartbeat_ticks", "(0) must be in 1..1000"},
		{"request timeout exactly 2 elections", func(n *Node) { n.RequestTimeout = time.Second }, "", ""},
		{"request timeout below 2 elections", func(n *Node) { n.RequestTimeout = 999 * time.Millisecond }, "request_timeout", "at least 2 election timeouts"},
		{"request timeout above max", func(n *Node) { n.RequestTimeout = 11 * time.Minute }, "request_timeout", "..10m0s"},
		{"shutdown zero", func(n *Node) { n.ShutdownTimeout = 0 }, "shutdown_timeout", "1ms..10m0s"},
		{"shutdown above max", func(n *Node) { n.ShutdownTimeout = time.Hour }, "shutdown_timeout", "1ms..10m0s"},
		{"message zero", func(n *Node) { n.MaxMessageBytes = 0 }, "max_message_bytes", "(0) must be in 1..67108864"},
		{"message at max", func(n *Node) { n.MaxMessageBytes = 64 * MiB; n.MaxBatchBytes = 64 * MiB }, "", ""},
		{"message above max", func(n *Node) { n.MaxMessageBytes = 64*MiB + 1; n.MaxBatchBytes = 128 * MiB }, "max_message_bytes", "1..67108864"},
		{"topic zero", func(n *Node) { n.MaxTopicBytes = 0 }, "max_topic_bytes", "1..4096"},
		{"topic at max", func(n *Node) { n.MaxTopicBytes = 4096 }, "", ""},
		{"topic above max", func(n *Node) { n.MaxTopicBytes = 4097 }, "max_topic_bytes", "1..4096"},
		{"pending zero", func(n *Node) { n.MaxPendingRequests = 0 }, "max_pending_requests", "1..1000000"},
		{"pending above max", func(n *Node) { n.MaxPendingRequests = 1_000_001 }, "max_pending_requests", "1..1000000"},
		{"client connections zero", func(n *Node) { n.MaxClientConnections = 0 }, "max_client_connections", "1..100000"},
		{"client connections above max", func(n *Node) { n.MaxClientConnections = 100_001 }, "max_client_connections", "1..100000"},
		{"batch below message", func(n *Node) { n.MaxBatchBytes = MiB - 1 }, "max_batch_bytes", "at least max_message_bytes"},
		{"batch above max", func(n *Node) { n.MaxBatchBytes = 256*MiB + 1 }, "max_batch_bytes", "..268435456"},
		{"inflight zero", func(n *Node) { n.MaxInflightMsgs = 0 }, "max_inflight_msgs", "1..10000"},
		{"inflight above max", func(n *Node) { n.MaxInflightMsgs = 10001 }, "max_inflight_msgs", "1..10000"},
		{"sessions zero", func(n *Node) { n.MaxSessions = 0 }, "max_sessions", "1..10000000"},
		{"sessions above max", func(n *Node) { n.MaxSessions = 10_000_001 }, "max_sessions", "1..10000000"},
		{"snapshot entries 99", func(n *Node) { n.SnapshotEntries = 99; n.TrailingEntries = 0 }, "snapshot_entries", "(99) must be in 100.."},
		{"snapshot entries 100", func(n *Node) { n.SnapshotEntries = 100; n.TrailingEntries = 100 }, "", ""},
		{"snapshot log percent 9", func(n *Node) { n.SnapshotLogPercent = 9 }, "snapshot_log_percent", "(9) must be in 10..10000"},
		{"snapshot log percent 10000", func(n *Node) { n.SnapshotLogPercent = 10000 }, "", ""},
		{"trailing above snapshot", func(n *Node) { n.TrailingEntries = 10001 }, "trailing_entries", "(10001) must be at most snapshot_entries (10000)"},
		{"kept zero", func(n *Node) { n.SnapshotsKept = 0 }, "snapshots_kept", "1..100"},
		{"kept above max", func(n *Node) { n.SnapshotsKept = 101 }, "snapshots_kept", "1..100"},
		{"chunk below min", func(n *Node) { n.SnapshotChunkBytes = 4*KiB - 1 }, "snapshot_chunk_bytes", "4096..67108864"},
		{"chunk at min", func(n *Node) { n.SnapshotChunkBytes = 4 * KiB }, "", ""},
		{"chunk above max", func(n *Node) { n.SnapshotChunkBytes = 64*MiB + 1 }, "snapshot_chunk_bytes", "4096..67108864"},
		{"log level", func(n *Node) { n.LogLevel = "verbose" }, "log_level", `("verbose") must be one of`},
		{"log format", func(n *Node) { n.LogFormat = "xml" }, "log_format", `["auto" "console" "json"]`},
		{"data dir empty", func(n *Node) { n.DataDir = "" }, "data_dir", "is empty"},
		{"listen ip bad", func(n *Node) { n.ListenIP = "localhost" }, "listen_ip", "is not an IP address"},
		{"listen ip any", func(n *Node) { n.ListenIP = "0.0.0.0" }, "", ""},
		{"id negative", func(n *Node) { n.ID = -1 }, "id", "(-1) must be an index into the cluster's addresses, 0..0"},
		{"id past end", func(n *Node) { n.ID = 1 }, "id", "(1)"},
		{"no addresses", func(n *Node) { n.Cluster.Addresses = nil }, "addresses", "is empty"},
		{"eight nodes", func(n *Node) { n.Cluster = clusterOf(8) }, "addresses", "has 8 nodes, at most 7"},
		{"seven nodes", func(n *Node) { n.Cluster = clusterOf(7); n.ID = 6 }, "", ""},
		{"port zero", func(n *Node) { n.Cluster.Addresses[0].Port = 0 }, "addresses[0].port", "(0) must be in 1..65535"},
		{"port too big", func(n *Node) { n.Cluster.Addresses[0].InternalPort = 65536 }, "addresses[0].internal_port", "1..65535"},
		{"port equals internal", func(n *Node) { n.Cluster.Addresses[0].InternalPort = 5550 }, "addresses[0].internal_port", "already used by addresses[0].port"},
		{"ip bad", func(n *Node) { n.Cluster.Addresses[0].IP = "256.0.0.1" }, "addresses[0].ip", "is not an IP address"},
		{"ip missing", func(n *Node) { n.Cluster.Addresses[0].IP = "" }, "addresses[0].ip", "is missing"},
		{"cluster id chars", func(n *Node) { n.Cluster.ClusterID = "a b" }, "cluster_id", "may contain only"},
		{"cluster id long", func(n *Node) { n.Cluster.ClusterID = strings.Repeat("a", 65) }, "cluster_id", "at most 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := Default()
			tt.edit(&n)
			err := n.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error about %s", tt.field)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("first FieldError = %+v, want field %q; err = %v", fe, tt.field, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "config: "+tt.field+" ") || !strings.Contains(msg, tt.want) {
				t.Errorf("Validate() = %q\nwant it to name %q and contain %q", msg, tt.field, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryProblemWithFlagAndEnv(t *testing.T) {
	n := Default()
	n.ElectionTicks = 0
	n.MaxTopicBytes = 0
	n.LogLevel = "loud"
	n.Cluster.Addresses[0].Port = -5
	msg := n.Validate().Error()
	for _, want := range []string{
		"config: election_ticks (0) must be in 2..1000 (flag --election-ticks, env RAFTMQ_ELECTION_TICKS)",
		"config: max_topic_bytes (0) must be in 1..4096 (flag --max-topic-bytes, env RAFTMQ_MAX_TOPIC_BYTES)",
		`config: log_level ("loud") must be one of`,
		"config: addresses[0].port (-5) must be in 1..65535\n", // cluster-file fields have no flag
	} {
		if !strings.Contains(msg+"\n", want) {
			t.Errorf("Validate() =\n%s\nwant it to contain %q", msg, want)
		}
	}
	if got := strings.Count(msg, "config: "); got != 5 { // election_ticks twice: range and > heartbeat
		t.Errorf("Validate() reported %d problems, want 5:\n%s", got, msg)
	}
}

func TestBindAddrs(t *testing.T) {
	n := Default()
	if got := n.ClientBindAddr(); got != "127.0.0.1:5550" {
		t.Errorf("ClientBindAddr() = %q", got)
	}
	n.ListenIP = "0.0.0.0"
	if got := n.PeerBindAddr(); got != "0.0.0.0:5560" {
		t.Errorf("PeerBindAddr() with ListenIP = %q", got)
	}
	a := Address{IP: "::1", Port: 1, InternalPort: 2}
	if got := a.ClientAddr(); got != "[::1]:1" {
		t.Errorf("IPv6 ClientAddr() = %q, want [::1]:1", got)
	}
}

func TestSelfPanicsOutsideAddresses(t *testing.T) {
	n := Default()
	n.ID = 3
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "id 3 not among the addresses' ids [0]") {
			t.Errorf("Self() recovered %v, want a panic naming the id", r)
		}
	}()
	n.Self()
}

func clusterOf(nodes int) Cluster {
	var c Cluster
	for i := range nodes {
		c.Addresses = append(c.Addresses, Address{IP: "127.0.0.1", Port: 5550 + i, InternalPort: 5650 + i})
	}
	return c
}

func TestNodeWithExplicitIDs(t *testing.T) {
	n := Default()
	n.Cluster = Cluster{ExplicitIDs: true, Addresses: []Address{
		{ID: 4, IP: "127.0.0.1", Port: 1, InternalPort: 2}, {ID: 1, IP: "127.0.0.1", Port: 3, InternalPort: 4},
	}}
	n.ID = 1
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := n.Self().Port; got != 3 {
		t.Fatalf("Self() of id 1 has port %d, want 3 (the entry with id 1, not index 1)", got)
	}
	n.ID = 0
	if err := n.Validate(); err == nil || !strings.Contains(err.Error(), "not the id of any node") {
		t.Fatalf("id 0 with ids [4 1]: %v", err)
	}
}
