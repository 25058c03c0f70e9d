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

var (
	descTerm          = desc("raft_term", "This node's current Raft term.")
	descIsLeader      = desc("raft_is_leader", "1 if this node is the leader, else 0.")
	descCommit        = desc("raft_commit_index", "The highest log index this node knows committed.")
	descApplied       = desc("raft_applied_index", "The highest log index applied to state.db.")
	descSnapshotIndex = desc("raft_snapshot_index", "The index of this node's newest snapshot.")
	descLeaderChanges = desc("raft_leader_changes_total", "Times this node saw the leader change (including to none) since it started.")
	descPeerLag       = desc("raft_peer_lag_entries", "Entries a follower is behind the leader's last index (reported by the leader).", "peer")
	descTopicMessages = desc("topic_messages", "Messages in a topic's queue, by state.", "topic", "state")
	descTopicBytes    = desc("topic_bytes", "Bytes of the messages in a topic's queue.", "topic")
	descDiskFree      = desc("disk_free_bytes", "Free bytes on the data directory's filesystem (available to the broker).")
	descDiskTotal     = desc("disk_total_bytes", "Size of the data directory's filesystem.")
	descDataBytes     = desc("data_bytes", "Bytes used by the data directory (raft.db, state.db, snapshots).")
	descDiskFull      = desc("disk_full", "1 while the disk-space guard is tripped: the leader refuses puts, a follower stops appending.")
	descReady         = desc("ready", "1 when /readyz answers 200.")
	descCurveRefused  = desc("curve_connections_refused_total", "Connections refused by CURVE on either port: plaintext, a key not allowed, a handshake that did not decrypt.")
	descSnapInProg    = desc("snapshot_in_progress", "1 while this node writes a snapshot.")
	descSnapBytes     = desc("snapshot_written_bytes", "Bytes the snapshot in progress has written so far (0 when none).")
	descSnapSends     = desc("snapshot_sends", "Snapshot transfers to followers under way.")
	descAnonRSS       = desc("anon_rss_bytes", "Anonymous resident memory of the broker process (RssAnon; bbolt's mmap is not in it).")
)

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTerm, descIsLeader, descCommit, descApplied, descSnapshotIndex,
		descLeaderChanges, descPeerLag, descTopicMessages, descTopicBytes, descDiskFree, descDiskTotal,
		descDataBytes, descDiskFull, descReady, descSnapInProg, descSnapBytes, descSnapSends, descAnonRSS, descCurveRefused} {
		ch <- d
	}
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descTerm, float64(s.Term))
	gauge(descIsLeader, boolFloat(s.IsLeader))
	gauge(descCommit, float64(s.Commit))
	gauge(descApplied, float64(s.Applied))
	gauge(descSnapshotIndex, float64(s.SnapshotIndex))
	ch <- prometheus.MustNewConstMetric(descLeaderChanges, prometheus.CounterValue, float64(s.LeaderChanges))
	ch <- prometheus.MustNewConstMetric(descCurveRefused, prometheus.CounterValue, float64(s.CurveConnsRefused))
	for peer, lag := range s.PeerLag {
		gauge(descPeerLag, float64(lag), peer)
	}
	for _, t := range boundTopics(s.Topics, c.topicLimit) {
		gauge(descTopicMessages, float64(t.Ready), t.Name, StateReady)
		gauge(descTopicMessages, float64(t.Leased), t.Name, StateLeased)
		gauge(descTopicMessages, float64(t.Delayed), t.Name, StateDelayed)
		gauge(descTopicBytes, float64(t.Bytes), t.Name)
	}
	gauge(descDiskFree, float64(s.DiskFreeBytes))
	gauge(descDiskTotal, float64(s.DiskTotalBytes))
	gauge(descDataBytes, float64(s.DataBytes))
	gauge(descDiskFull, boolFloat(s.DiskFull))
	gauge(descSnapInProg, boolFloat(s.SnapshotInProgress))
	gauge(descSnapBytes, float64(s.SnapshotBytes))
	gauge(descSnapSends, float64(s.SnapshotSends))
	if s.AnonBytes > 0 {
		gauge(descAnonRSS, float64(s.AnonBytes))
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
