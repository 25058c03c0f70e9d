// Package config holds raftmq's cluster file and node options: the one place
// that defines defaults (Default) and bounds (Validate).
package config

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// DefaultClientAddr is where client commands look for a broker by default:
// the client address of Default().
const DefaultClientAddr = "127.0.0.1:5550"

// Sizes.
const (
	KiB = 1 << 10
	MiB = 1 << 20
)

// Node is everything one broker needs to start. Build it from Default(),
// override fields, then call Validate. Each field's bounds are documented in
// validate.go.
type Node struct {
	ID      int // node id: the index into Cluster.Addresses, or its "id" when the file gives ids
	Cluster Cluster
	DataDir string
	// ListenIP, when set, is the IP the broker binds instead of its own
	// address's ip (e.g. "0.0.0.0" in a container whose advertised ip is not
	// bindable). Empty: bind Self().IP.
	ListenIP string

	TickInterval       time.Duration // one Raft tick
	ElectionTicks      int           // election timeout randomized in [E, 2E) ticks
	HeartbeatTicks     int           // leader heartbeat interval in ticks
	RequestTimeout     time.Duration // a client request not answered by then gets "timeout"
	ShutdownTimeout    time.Duration // graceful stop (leadership transfer, draining) budget
	MaxMessageBytes    int           // the "message" field of a PUT
	MaxTopicBytes      int           // a topic name
	MaxPendingRequests int           // in-flight client requests per node
	// MaxClientConnections bounds the client port's concurrent connections;
	// each may buffer one request frame, so this bounds that port's memory.
	MaxClientConnections int
	MaxBatchBytes        uint64 // proposals committed together / bytes per MsgApp
	MaxInflightMsgs      int    // unacknowledged MsgApp per follower
	MaxSessions          int    // client sessions kept in the state machine
	SnapshotEntries      uint64 // compact the log when this many entries were applied since the last compaction
	// SnapshotLogPercent and SnapshotsKept no longer have an effect: a
	// compaction copies nothing and no snapshot file is kept (decision
	// 26). They are still accepted (and validated) so that existing
	// configurations and scripts start.
	SnapshotLogPercent uint64
	TrailingEntries    uint64 // entries kept in the log behind a snapshot for slow followers
	SnapshotsKept      int
	SnapshotChunkBytes int    // bytes per InstallSnapshot chunk
	LogLevel           string // debug|info|warn|error
	LogFormat          string // auto|console|json
	// Recover starts the node in recovering mode (serve --recover): its data
	// directory was wiped or lost, so it must not vote or lead until it has
	// caught up with the cluster. Persisted in raft.db until then.
	Recover bool
	// Join starts a new node of a running cluster (serve --join): when its
	// data directory records no membership, it starts with none, never
	// campaigns, and waits for the leader to add it.
	Join bool
	// CurveSecret is this node's Z85 CURVE secret key (serve
	// --curve-secret-file, read with LoadCurveSecret); set exactly when the
	// cluster file carries curve_public keys. It turns CURVE on for both
	// ports. Never log it.
	CurveSecret string
	// CurveClients is who may use the client port when CURVE is on (serve
	// --curve-clients-file); the zero value allows nobody.
	CurveClients CurveClients

	// MetricsListen is the "host:port" of the HTTP server for /metrics,
	// /healthz and /readyz; empty turns it off. Port 0 picks a free port.
	MetricsListen string
	// MetricsTopics bounds the topic label's cardinality: the first
	// MetricsTopics topics (in creation order) get their own series, the
	// rest are summed under topic="other".
	MetricsTopics int
	// MinFreeBytes is the disk-space guard: below this much free space on
	// the data directory's filesystem the leader refuses puts and topic
	// creation (disk_full) and a follower stops appending. MinFreeAuto
	// means 256 MiB or 5% of the filesystem, whichever is less; 0 turns
	// the guard off.
	MinFreeBytes int64
	// MaxDataBytes bounds the data directory's size the same way; 0 means
	// unlimited.
	MaxDataBytes uint64
}

// MinFreeAuto is MinFreeBytes's default: 256 MiB or 5% of the filesystem,
// whichever is less (see MinFree).
const MinFreeAuto = -1

// MinFree resolves MinFreeBytes for a filesystem of totalBytes.
func (n Node) MinFree(totalBytes uint64) uint64 {
	if n.MinFreeBytes != MinFreeAuto {
		return uint64(n.MinFreeBytes)
	}
	return min(256*MiB, totalBytes/20)
}

// Default returns a valid single-node configuration: node 0 of a one-node
// cluster on 127.0.0.1 (client port 5550, internal port 5560), data in
// ./raftmq-data.
func Default() Node {
	return Node{
		ID: 0,
		Cluster: Cluster{Addresses: []Address{
			{IP: "127.0.0.1", Port: 5550, InternalPort: 5560},
		}},
		DataDir:              "./raftmq-data",
		TickInterval:         50 * time.Millisecond,
		ElectionTicks:        10,
		HeartbeatTicks:       1,
		RequestTimeout:       5 * time.Second,
		ShutdownTimeout:      5 * time.Second,
		MaxMessageBytes:      1 * MiB,
		MaxTopicBytes:        255,
		MaxPendingRequests:   10000,
		MaxClientConnections: 1024,
		MaxBatchBytes:        4 * MiB,
		MaxInflightMsgs:      256,
		MaxSessions:          10000,
		SnapshotEntries:      10000,
		SnapshotLogPercent:   100,
		TrailingEntries:      1000,
		SnapshotsKept:        2,
		SnapshotChunkBytes:   1 * MiB,
		LogLevel:             "info",
		LogFormat:            "auto",
		MetricsTopics:        100,
		MinFreeBytes:         MinFreeAuto,
	}
}

// Ignored names the options set to other than their default that no
// longer have an effect, so that the broker can say so at start.
func (n Node) Ignored() []string {
	d := Default()
	var out []string
	if n.SnapshotLogPercent != d.SnapshotLogPercent {
		out = append(out, "snapshot_log_percent")
	}
	if n.SnapshotsKept != d.SnapshotsKept {
		out = append(out, "snapshots_kept")
	}
	return out
}

// Self returns this node's address. It panics if ID is not an index into
// Cluster.Addresses: call Validate first.
func (n Node) Self() Address {
	i, ok := n.Cluster.Index(n.ID)
	if !ok {
		panic(fmt.Sprintf("config: Self: id %d not among the addresses' ids %v; Validate was not called", n.ID, n.Cluster.NodeIDs()))
	}
	return n.Cluster.Addresses[i]
}

// ElectionTimeout is the minimum election timeout, ElectionTicks ticks.
func (n Node) ElectionTimeout() time.Duration {
	return time.Duration(n.ElectionTicks) * n.TickInterval
}

// ClientBindAddr is the "ip:port" the client socket binds: ListenIP if set,
// else Self().IP.
func (n Node) ClientBindAddr() string {
	return net.JoinHostPort(n.bindIP(), strconv.Itoa(n.Self().Port))
}

// PeerBindAddr is the "ip:internal_port" the peer socket binds.
func (n Node) PeerBindAddr() string {
	return net.JoinHostPort(n.bindIP(), strconv.Itoa(n.Self().InternalPort))
}

func (n Node) bindIP() string {
	if n.ListenIP != "" {
		return n.ListenIP
	}
	return n.Self().IP
}
