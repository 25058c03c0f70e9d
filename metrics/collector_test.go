package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fixedSource struct {
	s     Snapshot
	ready bool
}

func (f fixedSource) Snapshot() Snapshot    { return f.s }
func (f fixedSource) Ready() (bool, string) { return f.ready, "" }

// Every field of a Snapshot reaches its metric, with its type; a zero
// anonymous RSS (unknown on this platform) is left out.
func TestCollectorExposesEverySnapshotField(t *testing.T) {
	src := fixedSource{ready: true, s: Snapshot{
		Term: 7, Commit: 41, Applied: 40, SnapshotIndex: 30, IsLeader: true, LeaderChanges: 3,
		PeerLag:       map[string]uint64{"1": 5},
		Topics:        []Topic{{Name: "q", Ready: 2, Leased: 1, Delayed: 4, Bytes: 99}},
		DiskFreeBytes: 1000, DiskTotalBytes: 5000, DataBytes: 200, DiskFull: true,
		CurveConnsRefused: 9, SnapshotInProgress: true, SnapshotBytes: 123, SnapshotSends: 2, AnonBytes: 4096,
	}}
	want := `
# HELP raftmq_anon_rss_bytes Anonymous resident memory of the broker process (RssAnon; bbolt's mmap is not in it).
# TYPE raftmq_anon_rss_bytes gauge
raftmq_anon_rss_bytes 4096
# HELP raftmq_curve_connections_refused_total Connections refused by CURVE on either port: plaintext, a key not allowed, a handshake that did not decrypt.
# TYPE raftmq_curve_connections_refused_total counter
raftmq_curve_connections_refused_total 9
# HELP raftmq_data_bytes Bytes used by the data directory (raft.db, state.db, snapshots).
# TYPE raftmq_data_bytes gauge
raftmq_data_bytes 200
# HELP raftmq_disk_free_bytes Free bytes on the data directory's filesystem (available to the broker).
# TYPE raftmq_disk_free_bytes gauge
raftmq_disk_free_bytes 1000
# HELP raftmq_disk_full 1 while the disk-space guard is tripped: the leader refuses puts, a follower stops appending.
# TYPE raftmq_disk_full gauge
raftmq_disk_full 1
# HELP raftmq_disk_total_bytes Size of the data directory's filesystem.
# TYPE raftmq_disk_total_bytes gauge
raftmq_disk_total_bytes 5000
# HELP raftmq_raft_applied_index The highest log index applied to state.db.
# TYPE raftmq_raft_applied_index gauge
raftmq_raft_applied_index 40
# HELP raftmq_raft_commit_index The highest log index this node knows committed.
# TYPE raftmq_raft_commit_index gauge
raftmq_raft_commit_index 41
# HELP raftmq_raft_is_leader 1 if this node is the leader, else 0.
# TYPE raftmq_raft_is_leader gauge
raftmq_raft_is_leader 1
# HELP raftmq_raft_leader_changes_total Times this node saw the leader change (including to none) since it started.
# TYPE raftmq_raft_leader_changes_total counter
raftmq_raft_leader_changes_total 3
# HELP raftmq_raft_peer_lag_entries Entries a follower is behind the leader's last index (reported by the leader).
# TYPE raftmq_raft_peer_lag_entries gauge
raftmq_raft_peer_lag_entries{peer="1"} 5
# HELP raftmq_raft_snapshot_index The index of this node's newest snapshot.
# TYPE raftmq_raft_snapshot_index gauge
raftmq_raft_snapshot_index 30
# HELP raftmq_raft_term This node's current Raft term.
# TYPE raftmq_raft_term gauge
raftmq_raft_term 7
# HELP raftmq_ready 1 when /readyz answers 200.
# TYPE raftmq_ready gauge
raftmq_ready 1
# HELP raftmq_snapshot_in_progress 1 while this node writes a snapshot.
# TYPE raftmq_snapshot_in_progress gauge
raftmq_snapshot_in_progress 1
# HELP raftmq_snapshot_sends Snapshot transfers to followers under way.
# TYPE raftmq_snapshot_sends gauge
raftmq_snapshot_sends 2
# HELP raftmq_snapshot_written_bytes Bytes the snapshot in progress has written so far (0 when none).
# TYPE raftmq_snapshot_written_bytes gauge
raftmq_snapshot_written_bytes 123
# HELP raftmq_topic_bytes Bytes of the messages in a topic's queue.
# TYPE raftmq_topic_bytes gauge
raftmq_topic_bytes{topic="q"} 99
# HELP raftmq_topic_messages Messages in a topic's queue, by state.
# TYPE raftmq_topic_messages gauge
raftmq_topic_messages{state="delayed",topic="q"} 4
raftmq_topic_messages{state="leased",topic="q"} 1
raftmq_topic_messages{state="ready",topic="q"} 2
`
	c := &snapshotCollector{src: src, topicLimit: 10}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	src.s.AnonBytes = 0
	c.src = src
	if err := testutil.CollectAndCompare(c, strings.NewReader(""), "raftmq_anon_rss_bytes"); err != nil {
		t.Fatalf("an unknown anonymous RSS is exposed: %v", err)
	}
}
