// Package metrics exports one broker's view as Prometheus metrics and
// answers the health endpoints (/metrics, /healthz, /readyz).
//
// Each broker has its own registry (never the global default one), so
// several brokers in one process, as in tests, keep their numbers apart.
// The broker's hot path touches only pre-built counters and histograms
// (atomic adds, no locks, no allocations); everything else is read from the
// broker at scrape time through Source.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every raftmq metric.
const Namespace = "raftmq"

// OtherTopic is the topic label under which the topics beyond
// Options.TopicLimit are summed. A topic really named "other" is counted
// there too, so no two series share a label set.
const OtherTopic = "other"

// Topic states of raftmq_topic_messages (decision 16): ready to be
// received, leased to a consumer, delayed after a NACK.
const (
	StateReady   = "ready"
	StateLeased  = "leased"
	StateDelayed = "delayed"
)

// Source is the broker as the metrics see it. Both methods are called from
// the HTTP server's goroutines, concurrently with the broker.
type Source interface {
	// Snapshot returns the broker's current numbers.
	Snapshot() Snapshot
	// Ready reports whether the node can serve now (see /readyz) and, if
	// not, why.
	Ready() (ok bool, reason string)
}

// Snapshot is one broker's numbers at a scrape.
type Snapshot struct {
	Term, Commit, Applied, SnapshotIndex uint64
	IsLeader                             bool
	LeaderChanges                        uint64
	// PeerLag maps a peer's label (its cluster-file index) to the entries
	// it is behind the leader's last index; set on the leader only.
	PeerLag map[string]uint64
	// Topics in creation order.
	Topics []Topic
	// Disk: the data directory's filesystem and the directory's own size.
	DiskFreeBytes, DiskTotalBytes, DataBytes uint64
	// DiskFull: the disk-space guard is tripped on this node.
	DiskFull bool
	// CurveConnsRefused counts connections CURVE refused, both ports.
	CurveConnsRefused uint64
	// Snapshot work (decision 15): a snapshot being written and its bytes
	// so far; transfers to followers under way.
	SnapshotInProgress bool
	SnapshotBytes      int64
	SnapshotSends      int
	// AnonBytes is the process's anonymous resident memory (0 if unknown);
	// the Go collector reports the heap.
	AnonBytes uint64
}

// Topic is one topic's queue.
type Topic struct {
	Name                   string
	Ready, Leased, Delayed uint64 // messages by delivery state
	Bytes                  uint64
}

// Options tune the metrics.
type Options struct {
	// TopicLimit is the most topics that get their own series; the rest
	// are summed under topic="other".
	TopicLimit int
}

// Metrics is one broker's registry and the instruments its hot path feeds.
type Metrics struct {
	reg       *prometheus.Registry
	src       Source
	requests  [numKinds][numOutcomes]prometheus.Counter
	durations [numKinds]prometheus.Observer
	logCommit prometheus.Histogram
	perCommit prometheus.Histogram
}

// New builds the registry of one broker: the Go and process collectors,
// the request and raft.db instruments, and a collector that reads src at
// each scrape.
func New(src Source, opts Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), src: src}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "requests_total",
		Help: "Client requests answered, by type, method and outcome (ok, no, or the error code).",
	}, []string{"type", "method", "outcome"})
	durations := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "request_duration_seconds",
		Help:    "Time from a client request's arrival to its answer.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"type", "method"})
	for k := Kind(0); k < numKinds; k++ {
		typ, method := k.labels()
		for o := Outcome(0); o < numOutcomes; o++ {
			m.requests[k][o] = requests.WithLabelValues(typ, method, outcomeLabels[o])
		}
		m.durations[k] = durations.WithLabelValues(typ, method)
	}
	m.logCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "raft", Name: "log_commit_seconds",
		Help:    "Time of one raft.db write transaction (its fsync included).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 0.1 ms .. 3.3 s
	})
	m.perCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "raft", Name: "entries_per_commit",
		Help:    "Log entries written by one raft.db transaction (group commit).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 .. 8192
	})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		requests, durations, m.logCommit, m.perCommit,
		&snapshotCollector{src: src, topicLimit: opts.TopicLimit},
	)
	return m
}

// Registry is the broker's registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest counts one answered request and how long it took. Safe
// for concurrent use; no locks, no allocations.
func (m *Metrics) ObserveRequest(k Kind, o Outcome, took time.Duration) {
	m.requests[k][o].Inc()
	m.durations[k].Observe(took.Seconds())
}

// ObserveLogCommit records one raft.db write transaction.
func (m *Metrics) ObserveLogCommit(took time.Duration, entries int) {
	m.logCommit.Observe(took.Seconds())
	m.perCommit.Observe(float64(entries))
}
