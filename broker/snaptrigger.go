package broker

import "time"

// logEntryOverheadBytes is what an entry costs in raft.db beyond its data
// (key, header, checksum, bbolt's leaf element), for snapTrigger.
const logEntryOverheadBytes = 48

// queuedRefreshEntries is how many applied entries the bytes queued that
// snapTrigger compares with may be behind while entries keep coming.
const queuedRefreshEntries = 1000

// queuedRefreshInterval is how old the bytes queued may get once entries
// stop coming: a queue drained since the last refresh must not keep its
// old depth, or the last snapshot due would wait for the next 1000
// entries.
const queuedRefreshInterval = time.Second

// snapTrigger decides when the log has paid for a snapshot: more than
// entries applied entries past the last one, and log bytes since then of
// at least logPercent of the bytes queued now. A snapshot copies the
// state, so with the second condition its cost is at most a fixed multiple
// of the bytes the log took in meanwhile: a message's share stays the same
// however deep the queues are (decision 15).
type snapTrigger struct {
	entries    uint64
	logPercent uint64
	// logBytes counts applied log bytes since the last snapshot began;
	// queuedBytes is the bytes queued at applied index queuedAt, read at
	// refreshedAt.
	logBytes    uint64
	queuedBytes uint64
	queuedAt    uint64
	refreshedAt time.Time
}

// due reports whether a snapshot is due at applied, the last one being at
// snapIndex. queued reads the bytes queued now; it is called at the first
// check after a baseline, then only when the last reading is
// queuedRefreshEntries entries behind, or older than queuedRefreshInterval
// with entries applied since.
func (t *snapTrigger) due(applied, snapIndex uint64, now time.Time, queued func() (uint64, error)) bool {
	if applied-snapIndex <= t.entries {
		return false
	}
	stale := t.refreshedAt.IsZero() || applied-t.queuedAt >= queuedRefreshEntries ||
		(applied != t.queuedAt && now.Sub(t.refreshedAt) >= queuedRefreshInterval)
	if stale {
		if b, err := queued(); err == nil {
			t.queuedBytes, t.queuedAt, t.refreshedAt = b, applied, now
		}
	}
	return t.logBytes*100 >= t.queuedBytes*t.logPercent
}

// count adds applied entries of these data sizes to the log bytes since
// the last snapshot.
func (t *snapTrigger) count(dataBytes int) {
	t.logBytes += uint64(dataBytes) + logEntryOverheadBytes
}

// baseline starts counting toward the next snapshot from now, with the
// log bytes already on disk.
func (t *snapTrigger) baseline(logBytes uint64) {
	t.logBytes = logBytes
	t.refreshedAt = time.Time{} // read the bytes queued at the next check
}
