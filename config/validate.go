package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Bounds checked by Validate. Values outside them are nonsense or would let
// one client or one node exhaust memory or stall the cluster.
const (
	MinTickInterval       = time.Millisecond
	MaxTickInterval       = 10 * time.Second
	MinElectionTicks      = 2
	MaxElectionTicks      = 1000
	MinHeartbeatTicks     = 1 // and < ElectionTicks
	MaxRequestTimeout     = 10 * time.Minute
	MinRequestTimeoutElec = 2 // RequestTimeout >= 2 election timeouts: a request survives one leader change
	MinShutdownTimeout    = time.Millisecond
	MaxShutdownTimeout    = 10 * time.Minute
	MaxMessageBytesLimit  = 64 * MiB
	MaxTopicBytesLimit    = 4096
	MaxPendingLimit       = 1_000_000
	MaxClientConnsLimit   = 100_000
	MaxBatchBytesLimit    = 256 * MiB // and >= MaxMessageBytes: one message must fit a batch
	MaxInflightLimit      = 10_000
	MaxSessionsLimit      = 10_000_000
	MinSnapshotEntries    = 100
	MaxSnapshotEntries    = 1_000_000_000
	MinSnapshotLogPercent = 10
	MaxSnapshotLogPercent = 10_000
	MaxSnapshotsKept      = 100
	MinSnapshotChunkBytes = 4 * KiB
	MaxSnapshotChunkBytes = 64 * MiB
	MaxMetricsTopics      = 10_000
)

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"auto", "console", "json"}
)

// Validate checks every field against the bounds above and the cluster
// (Cluster.Validate). It reports all problems at once: the result is an
// errors.Join of *FieldError, each wrapping ErrInvalid and naming the field,
// its flag and env var.
func (n Node) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	intIn := func(field string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(field, "(%d) must be in %d..%d", v, lo, hi)
		}
	}
	durIn := func(field string, v, lo, hi time.Duration) {
		if v < lo || v > hi {
			bad(field, "(%s) must be in %s..%s", v, lo, hi)
		}
	}
	oneOf := func(field, v string, allowed []string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		bad(field, "(%q) must be one of %q", v, allowed)
	}

	if err := n.Cluster.Validate(); err != nil {
		errs = append(errs, err)
	}
	if n.Join && n.Recover {
		bad("join", "and recover exclude each other: --join is for a new node, --recover for a member that lost its data")
	}
	if _, ok := n.Cluster.Index(n.ID); len(n.Cluster.Addresses) > 0 && !ok {
		if n.Cluster.ExplicitIDs {
			bad("id", "(%d) is not the id of any node in the cluster file (ids %v)", n.ID, n.Cluster.NodeIDs())
		} else {
			bad("id", "(%d) must be an index into the cluster's addresses, 0..%d", n.ID, len(n.Cluster.Addresses)-1)
		}
	}
	if n.DataDir == "" {
		bad("data_dir", "is empty: name the directory for raft.db, state.db and snapshots")
	}
	if n.ListenIP != "" {
		if _, err := netip.ParseAddr(n.ListenIP); err != nil {
			bad("listen_ip", "(%q) is not an IP address (use 0.0.0.0 to bind every interface)", n.ListenIP)
		}
	}

	durIn("tick_interval", n.TickInterval, MinTickInterval, MaxTickInterval)
	intIn("election_ticks", n.ElectionTicks, MinElectionTicks, MaxElectionTicks)
	intIn("heartbeat_ticks", n.HeartbeatTicks, MinHeartbeatTicks, MaxElectionTicks)
	if n.ElectionTicks <= n.HeartbeatTicks {
		bad("election_ticks", "(%d) must be greater than heartbeat_ticks (%d)", n.ElectionTicks, n.HeartbeatTicks)
	}
	if minReq := MinRequestTimeoutElec * n.ElectionTimeout(); n.RequestTimeout < minReq || n.RequestTimeout > MaxRequestTimeout {
		bad("request_timeout", "(%s) must be in %s..%s: at least %d election timeouts (election_ticks %d x tick_interval %s)",
			n.RequestTimeout, minReq, MaxRequestTimeout, MinRequestTimeoutElec, n.ElectionTicks, n.TickInterval)
	}
	durIn("shutdown_timeout", n.ShutdownTimeout, MinShutdownTimeout, MaxShutdownTimeout)

	intIn("max_message_bytes", n.MaxMessageBytes, 1, MaxMessageBytesLimit)
	intIn("max_topic_bytes", n.MaxTopicBytes, 1, MaxTopicBytesLimit)
	intIn("max_pending_requests", n.MaxPendingRequests, 1, MaxPendingLimit)
	intIn("max_client_connections", n.MaxClientConnections, 1, MaxClientConnsLimit)
	if lo := uint64(max(n.MaxMessageBytes, 1)); n.MaxBatchBytes < lo || n.MaxBatchBytes > MaxBatchBytesLimit {
		bad("max_batch_bytes", "(%d) must be in %d..%d: at least max_message_bytes, so one message fits a batch",
			n.MaxBatchBytes, lo, MaxBatchBytesLimit)
	}
	intIn("max_inflight_msgs", n.MaxInflightMsgs, 1, MaxInflightLimit)
	intIn("max_sessions", n.MaxSessions, 1, MaxSessionsLimit)

	if n.SnapshotEntries < MinSnapshotEntries || n.SnapshotEntries > MaxSnapshotEntries {
		bad("snapshot_entries", "(%d) must be in %d..%d", n.SnapshotEntries, MinSnapshotEntries, MaxSnapshotEntries)
	}
	if n.SnapshotLogPercent < MinSnapshotLogPercent || n.SnapshotLogPercent > MaxSnapshotLogPercent {
		bad("snapshot_log_percent", "(%d) must be in %d..%d", n.SnapshotLogPercent, MinSnapshotLogPercent, MaxSnapshotLogPercent)
	}
	if n.TrailingEntries > n.SnapshotEntries {
		bad("trailing_entries", "(%d) must be at most snapshot_entries (%d)", n.TrailingEntries, n.SnapshotEntries)
	}
	intIn("snapshots_kept", n.SnapshotsKept, 1, MaxSnapshotsKept)
	intIn("snapshot_chunk_bytes", n.SnapshotChunkBytes, MinSnapshotChunkBytes, MaxSnapshotChunkBytes)

	switch curve := n.Cluster.Curve(); {
	case n.CurveSecret != "" && !curve:
		bad("curve_secret_file", "is set, but the cluster file carries no \"curve_public\" keys: add every node's public key to it (raftmq keygen)")
	case n.CurveSecret == "" && curve:
		bad("curve_secret_file", "is not set, but the cluster file carries \"curve_public\" keys: pass this node's secret key file")
	case n.CurveSecret != "":
		if err := CheckCurveKey(n.CurveSecret); err != nil {
			bad("curve_secret_file", "holds a key that %s", err)
		}
	}
	if n.CurveSecret == "" && (n.CurveClients.Any || len(n.CurveClients.Keys) > 0) {
		bad("curve_clients_file", "is set, but CURVE is off: pass --curve-secret-file too")
	}
	for i, k := range n.CurveClients.Keys {
		if err := CheckCurveKey(k); err != nil {
			bad("curve_clients_file", "key %d %s", i+1, err)
		}
	}
	if n.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(n.MetricsListen); err != nil {
			bad("metrics_listen", "(%q) is not host:port (%v)", n.MetricsListen, err)
		}
	}
	intIn("metrics_topics", n.MetricsTopics, 0, MaxMetricsTopics)
	if n.MinFreeBytes < MinFreeAuto {
		bad("min_free_bytes", "(%d) must be %d (256 MiB or 5%% of the filesystem, whichever is less), 0 (no guard) or a byte count", n.MinFreeBytes, MinFreeAuto)
	}

	oneOf("log_level", n.LogLevel, logLevels)
	oneOf("log_format", n.LogFormat, logFormats)
	return errors.Join(errs...)
}
