package broker

import (
	"github.com/raftmq/raftmq/metrics"
	"github.com/raftmq/raftmq/raftlog"
)

// MetricsAddr is the "host:port" the metrics server listens on, "" when
// it is off or not started yet.
func (b *Broker) MetricsAddr() string {
	if a := b.metricsAddr.Load(); a != nil {
		return *a
	}
	return ""
}

// Metrics is the broker's metrics registry and instruments.
func (b *Broker) Metrics() *metrics.Metrics { return b.metrics }

// metricsSource is the broker as the metrics package reads it at a scrape:
// the published status (never the node loop's fields) and the topic
// depths from state.db.
type metricsSource struct{ b *Broker }

var _ metrics.Source = metricsSource{}

func (s metricsSource) Snapshot() metrics.Snapshot {
	st := s.b.Status()
	out := metrics.Snapshot{
		Term: st.Term, Commit: st.Commit, Applied: st.Applied, SnapshotIndex: st.Snapshot,
		IsLeader:      st.Role == raftlog.RoleLeader.String(),
		LeaderChanges: st.LeaderChanges,
		PeerLag:       st.PeerLag,
		DiskFreeBytes: st.DiskFreeBytes, DiskTotalBytes: st.DiskTotalBytes, DataBytes: st.DataBytes,
		DiskFull:           st.DiskFull,
		SnapshotInProgress: st.SnapshotInProgress, SnapshotBytes: st.SnapshotBytes, SnapshotSends: st.SnapshotSends,
		AnonBytes:         st.AnonBytes,
		CurveConnsRefused: st.CurveConnsRefused,
	}
	depths, err := s.b.state.TopicStats()
	if err != nil {
		s.b.log.Debug().Err(err).Msg("metrics: cannot read topic depths")
	}
	out.Topics = make([]metrics.Topic, len(depths))
	for i, d := range depths {
		out.Topics[i] = metrics.Topic(d)
	}
	return out
}

func (s metricsSource) Ready() (bool, string) {
	st := s.b.Status()
	return st.Ready, st.NotReady
}
