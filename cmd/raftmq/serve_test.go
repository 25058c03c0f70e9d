package main

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/config"
)

func TestServeFlagsToConfig(t *testing.T) {
	cluster := writeCluster(t, "10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000")
	def := config.Default()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want func(n *config.Node)
	}{
		{"no flags: config.Default()", nil, nil, func(*config.Node) {}},
		{"every option as a flag", nil, []string{
			"--data-dir", "/var/lib/raftmq", "--listen-ip", "0.0.0.0", "--tick-interval", "20ms",
			"--election-ticks", "20", "--heartbeat-ticks", "2", "--request-timeout", "3s", "--shutdown-timeout", "7s",
			"--max-message-bytes", "2048", "--max-topic-bytes", "64", "--max-pending-requests", "50", "--max-client-connections", "77",
			"--max-batch-bytes", "8192", "--max-inflight-msgs", "16", "--max-sessions", "99",
			"--snapshot-entries", "500", "--snapshot-log-percent", "250", "--trailing-entries", "100", "--snapshots-kept", "3",
			"--snapshot-chunk-bytes", "8192", "--log-level", "debug", "--log-format", "json",
		}, func(n *config.Node) {
			n.DataDir, n.ListenIP, n.TickInterval = "/var/lib/raftmq", "0.0.0.0", 20*time.Millisecond
			n.ElectionTicks, n.HeartbeatTicks, n.RequestTimeout, n.ShutdownTimeout = 20, 2, 3*time.Second, 7*time.Second
			n.MaxMessageBytes, n.MaxTopicBytes, n.MaxPendingRequests = 2048, 64, 50
			n.MaxClientConnections = 77
			n.MaxBatchBytes, n.MaxInflightMsgs, n.MaxSessions = 8192, 16, 99
			n.SnapshotEntries, n.TrailingEntries, n.SnapshotsKept = 500, 100, 3
			n.SnapshotLogPercent = 250
			n.SnapshotChunkBytes, n.LogLevel, n.LogFormat = 8192, "debug", "json"
		}},
		{"env vars", map[string]string{"RAFTMQ_ELECTION_TICKS": "30", "RAFTMQ_DATA_DIR": "/env", "RAFTMQ_LOG_LEVEL": "warn", "RAFTMQ_MAX_BATCH_BYTES": "8388608", "RAFTMQ_MAX_CLIENT_CONNECTIONS": "12"}, nil,
			func(n *config.Node) {
				n.ElectionTicks, n.DataDir, n.LogLevel, n.MaxBatchBytes = 30, "/env", "warn", 8388608
				n.MaxClientConnections = 12
			}},
		{"a flag beats its env var", map[string]string{"RAFTMQ_ELECTION_TICKS": "30"}, []string{"--election-ticks", "40"},
			func(n *config.Node) { n.ElectionTicks = 40 }},
		{"cluster file and id", nil, []string{"--config", cluster, "--id", "2"}, func(n *config.Node) {
			n.ID = 2
			n.Cluster = threeNodes
		}},
		{"cluster file from env", map[string]string{"RAFTMQ_CONFIG": cluster, "RAFTMQ_ID": "1"}, nil, func(n *config.Node) {
			n.ID = 1
			n.Cluster = threeNodes
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			r := runner{t: t}.run(append([]string{"serve"}, tt.args...)...)
			if r.code != 0 || r.served == nil {
				t.Fatalf("exit %d, stderr %q, served %v", r.code, r.stderr, r.served != nil)
			}
			want := def
			tt.want(&want)
			if got := *r.served; !equalNodes(got, want) {
				t.Fatalf("config\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

var threeNodes = config.Cluster{Addresses: []config.Address{
	{IP: "10.0.0.1", Port: 7000, InternalPort: 6000},
	{IP: "10.0.0.2", Port: 7000, InternalPort: 6001},
	{IP: "10.0.0.3", Port: 7000, InternalPort: 6002},
}}

func equalNodes(a, b config.Node) bool {
	return reflect.DeepEqual(a, b)
}

func TestServeLogLevelLineage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--log-level", "debug", "serve"}, "debug"},
		{[]string{"--log-level", "debug", "serve", "--log-level", "error"}, "error"},
		{[]string{"serve", "--log-format", "console"}, "info"},
	}
	for _, tt := range tests {
		r := runner{t: t}.run(tt.args...)
		if r.code != 0 || r.served == nil || r.served.LogLevel != tt.want {
			t.Errorf("raftmq %v: exit %d, served %+v; want log level %s", tt.args, r.code, r.served, tt.want)
		}
	}
}

func TestServeExitCodes(t *testing.T) {
	t.Run("broker error: exit 4, one line", func(t *testing.T) {
		c := runner{t: t, serve: func(context.Context, config.Node, zerolog.Logger) error {
			return errors.New("storage: data file is locked\n(is a broker running on this directory?)")
		}}
		r := c.run("serve", "--data-dir", "/d")
		if r.code != exitOther || !strings.Contains(r.stderr, "data dir /d") || strings.Count(r.stderr, "\n") != 1 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("SIGTERM: graceful stop, exit 0", func(t *testing.T) {
		c := runner{t: t, serve: func(ctx context.Context, _ config.Node, log zerolog.Logger) error {
			log.Info().Msg("serving")
			if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(10 * time.Second):
				return errors.New("SIGTERM did not cancel the context")
			}
		}}
		r := c.run("serve", "--log-format", "json")
		if r.code != 0 || !strings.Contains(r.stderr, `"message":"serving"`) {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}
