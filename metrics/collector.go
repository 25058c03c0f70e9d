package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// snapshotCollector turns a Source's Snapshot into metrics at scrape time:
// nothing of it costs the broker anything between scrapes.
type snapshotCollector struct {
	src        Source
	topicLimit int
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
}

// scalar is a metric with no labels, read off one Snapshot field.
type scalar struct {
	desc    *prometheus.Desc
	counter bool
	value   func(*Snapshot) float64
	// omitZero leaves the metric out when it reads 0 (not known here).
	omitZero bool
}

func gauge(name, help string, value func(*Snapshot) float64) scalar {
	return scalar{desc: desc(name, help), value: value}
}

func counter(name, help string, value func(*Snapshot) float64) scalar {
	return scalar{desc: desc(name, help), counter: true, value: value}
}

var scalars = []scalar{
	gauge("raft_term", "This node's current Raft term.", func(s *Snapshot) float64 { return float64(s.Term) }),
	gauge("raft_is_leader", "1 if this node is the leader, else 0.", func(s *Snapshot) float64 { return boolFloat(s.IsLeader) }),
	gauge("raft_commit_index", "The highest log index this node knows committed.", func(s *Snapshot) float64 { return float64(s.Commit) }),
	gauge("raft_applied_index", "The highest log index applied to state.db.", func(s *Snapshot) float64 { return float64(s.Applied) }),
	gauge("raft_snapshot_index", "The index of this node's newest snapshot.", func(s *Snapshot) float64 { return float64(s.SnapshotIndex) }),
	counter("raft_leader_changes_total", "Times this node saw the leader change (including to none) since it started.",
		func(s *Snapshot) float64 { return float64(s.LeaderChanges) }),
	gauge("disk_free_bytes", "Free bytes on the data directory's filesystem (available to the broker).",
		func(s *Snapshot) float64 { return float64(s.DiskFreeBytes) }),
	gauge("disk_total_bytes", "Size of the data directory's filesystem.", func(s *Snapshot) float64 { return float64(s.DiskTotalBytes) }),
	gauge("data_bytes", "Bytes used by the data directory (raft.db, state.db, snapshots).",
		func(s *Snapshot) float64 { return float64(s.DataBytes) }),
	gauge("disk_full", "1 while the disk-space guard is tripped: the leader refuses puts, a follower stops appending.",
		func(s *Snapshot) float64 { return boolFloat(s.DiskFull) }),
	counter("curve_connections_refused_total", "Connections refused by CURVE on either port: plaintext, a key not allowed, a handshake that did not decrypt.",
		func(s *Snapshot) float64 { return float64(s.CurveConnsRefused) }),
	gauge("snapshot_in_progress", "1 while this node writes a snapshot.", func(s *Snapshot) float64 { return boolFloat(s.SnapshotInProgress) }),
	gauge("snapshot_written_bytes", "Bytes the snapshot in progress has written so far (0 when none).",
		func(s *Snapshot) float64 { return float64(s.SnapshotBytes) }),
	gauge("snapshot_sends", "Snapshot transfers to followers under way.", func(s *Snapshot) float64 { return float64(s.SnapshotSends) }),
	{desc: desc("anon_rss_bytes", "Anonymous resident memory of the broker process (RssAnon; bbolt's mmap is not in it)."),
		value: func(s *Snapshot) float64 { return float64(s.AnonBytes) }, omitZero: true},
}

var (
	descPeerLag       = desc("raft_peer_lag_entries", "Entries a follower is behind the leader's last index (reported by the leader).", "peer")
	descTopicMessages = desc("topic_messages", "Messages in a topic's queue, by state.", "topic", "state")
	descTopicBytes    = desc("topic_bytes", "Bytes of the messages in a topic's queue.", "topic")
	descReady         = desc("ready", "1 when /readyz answers 200.")
)

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range scalars {
		ch <- m.desc
	}
	for _, d := range []*prometheus.Desc{descPeerLag, descTopicMessages, descTopicBytes, descReady} {
		ch <- d
	}
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, m := range scalars {
		v := m.value(&s)
		switch {
		case m.omitZero && v == 0:
		case m.counter:
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, v)
		default:
			gauge(m.desc, v)
		}
	}
	for peer, lag := range s.PeerLag {
		gauge(descPeerLag, float64(lag), peer)
	}
	for _, t := range boundTopics(s.Topics, c.topicLimit) {
		gauge(descTopicMessages, float64(t.Ready), t.Name, StateReady)
		gauge(descTopicMessages, float64(t.Leased), t.Name, StateLeased)
		gauge(descTopicMessages, float64(t.Delayed), t.Name, StateDelayed)
		gauge(descTopicBytes, float64(t.Bytes), t.Name)
	}
	ok, _ := c.src.Ready()
	gauge(descReady, boolFloat(ok))
}

// boundTopics keeps the first limit topics (creation order) and sums the
// rest, and any topic named OtherTopic, into one OtherTopic entry, so the
// topic label has at most limit+1 values.
func boundTopics(topics []Topic, limit int) []Topic {
	out := make([]Topic, 0, min(len(topics), limit)+1)
	other := Topic{Name: OtherTopic}
	hasOther := false
	for i, t := range topics {
		if i >= limit || t.Name == OtherTopic {
			other.Ready += t.Ready
			other.Leased += t.Leased
			other.Delayed += t.Delayed
			other.Bytes += t.Bytes
			hasOther = true
			continue
		}
		out = append(out, t)
	}
	if hasOther {
		out = append(out, other)
	}
	return out
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// PeerLabel is the peer label of a node: its cluster-file index.
func PeerLabel(index int) string { return strconv.Itoa(index) }
