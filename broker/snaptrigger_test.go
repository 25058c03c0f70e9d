package broker

import (
	"testing"
	"time"
)

// A queue drained after the last reading of its depth must not hold the
// next snapshot back once entries stop coming: the reading is refreshed
// when it is older than queuedRefreshInterval. Without that, the stale
// depth held TestLogAndDiskStayBounded's last snapshot until 1000 more
// entries, which never came.
func TestSnapTriggerRefreshesADrainedQueue(t *testing.T) {
	queued := uint64(128 << 10)
	reads := 0
	read := func() (uint64, error) { reads++; return queued, nil }
	tr := snapTrigger{entries: 200, logPercent: 100}
	tr.baseline(0)
	t0 := time.Unix(1000, 0)

	// 201 entries of 500 bytes since the snapshot at 0, 128 KiB queued:
	// the log has not paid for a copy yet.
	for range 201 {
		tr.count(500)
	}
	if tr.due(201, 0, t0, read) {
		t.Fatalf("due with %d log bytes for %d queued", tr.logBytes, queued)
	}
	// Pops drain the queue; 20 more entries do not reach the refresh count.
	queued = 0
	for range 20 {
		tr.count(100)
	}
	if tr.due(221, 0, t0.Add(10*time.Millisecond), read) {
		t.Fatalf("the depth was read again after 20 entries and 10 ms (reads %d)", reads)
	}
	// Nothing else is applied. Once the reading is old, it is refreshed.
	if !tr.due(221, 0, t0.Add(queuedRefreshInterval), read) {
		t.Fatalf("not due %v after the queue drained: depth still %d", queuedRefreshInterval, tr.queuedBytes)
	}
	if reads != 2 {
		t.Fatalf("read the depth %d times, want 2", reads)
	}
}

// Entries keep coming: the depth is read every queuedRefreshEntries, not
// on every check, and an idle node whose reading is current does not read
// again.
func TestSnapTriggerReadsDepthSparingly(t *testing.T) {
	reads := 0
	read := func() (uint64, error) { reads++; return 1 << 30, nil }
	tr := snapTrigger{entries: 10, logPercent: 100}
	tr.baseline(0)
	now := time.Unix(1000, 0)
	for applied := uint64(11); applied < 11+3*queuedRefreshEntries; applied++ {
		tr.count(10)
		tr.due(applied, 0, now, read)
	}
	if reads != 3 {
		t.Fatalf("read the depth %d times over %d entries, want 3", reads, 3*queuedRefreshEntries)
	}
	last := uint64(10 + 3*queuedRefreshEntries)
	tr.due(last, 0, now.Add(time.Hour), read)
	before := reads
	tr.due(last, 0, now.Add(2*time.Hour), read)
	if reads != before {
		t.Fatalf("an idle node read the depth again with nothing applied")
	}
}
