package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/snapshot"
	"github.com/raftmq/raftmq/storage"
)

// Files the snapshot machinery leaves in the data directory only while it
// works; New removes leftovers of a crash.
const (
	compactStateFile = "state.db.compact" // compact copy of state.db at the snapshot index
	installPrefix    = "install-"         // install-<snapshot name>.db: a received body ready to swap in
	installSuffix    = ".db"
)

// rebuildMinFreeBytes: a bbolt file is rebuilt when more than this many
// bytes, and more than its live data, are free pages.
const rebuildMinFreeBytes = 16 << 20

// snapshotJob is a snapshot being written in the background. Invariant: at
// most one at a time; only the node loop starts, cancels and finishes it.
type snapshotJob struct {
	cancel  context.CancelFunc
	done    chan snapshotResult // receives exactly once
	waiters []replyTo           // admin requests answered when it finishes
	started time.Time
	// conf is the membership as of the applied index when the job began;
	// a membership change applied meanwhile cancels the job.
	conf    raftlog.ConfState
	written *atomic.Int64 // body bytes written so far, for status
}

type snapshotResult struct {
	meta        snapshot.Meta
	compactPath string // compact copy of state.db at meta.Index; removed or swapped in by the node loop
	err         error
}

// snapshotDone is the answer to an admin snapshot request.
func snapshotDone(index uint64) wire.Response { return wire.Response{Success: true, Index: &index} }

func (n *node) jobDoneCh() <-chan snapshotResult {
	if n.job == nil {
		return nil
	}
	return n.job.done
}

// requestSnapshot is the admin request: take a snapshot now, on this node.
func (n *node) requestSnapshot(cr clientRequest) {
	n.snapWaiting = append(n.snapWaiting, cr.route) // the node loop's maybeSnapshot starts it
}

// countApplied adds applied entries to the log bytes since the last snapshot.
func (n *node) countApplied(ents []raftlog.Entry) {
	for _, e := range ents {
		n.snapTrigger.count(len(e.Data))
	}
}

// errApplierBehind: state.db is not at the handed index yet.
var errApplierBehind = errors.New("broker: the applier has not applied everything handed to it")

// queuedBytesAtHanded reads the bytes queued in state.db only while the
// applier has applied everything handed to it: state.db is then at the
// handed index, not somewhere before it (a reading taken before a burst of
// pops is applied would hold the bytes they free, and put the snapshot
// off). snapTrigger reads again at its next check.
func (n *node) queuedBytesAtHanded() (uint64, error) {
	if n.applied != n.handed {
		return 0, errApplierBehind
	}
	return n.state.QueuedBytes()
}

// maybeSnapshot starts a snapshot when snapTrigger says it is due, an admin asked, or the
// newest snapshot's file turned out to be missing (forceSnapshot). It
// returns an error only when the node must stop.
func (n *node) maybeSnapshot() error {
	if n.job != nil {
		return nil
	}
	applied := n.handed // what the snapshot will hold once the applier catches up
	due := n.snapTrigger.due(applied, n.snapIndex, time.Now(), n.queuedBytesAtHanded)
	if !due && len(n.snapWaiting) == 0 && !n.forceSnapshot {
		return nil
	}
	if applied == 0 || (applied <= n.snapIndex && !n.forceSnapshot) {
		// Nothing applied since the last snapshot: it is current.
		for _, route := range n.snapWaiting {
			if n.snapIndex == 0 {
				n.reply.send(route, wire.ErrorResponse(wire.ErrInternal, "nothing has been applied yet: there is nothing to snapshot"))
			} else {
				n.reply.send(route, snapshotDone(n.snapIndex))
			}
		}
		n.snapWaiting = nil
		return nil
	}
	if !n.snapshotFits() {
		return nil
	}
	// The copy holds what state.db has committed: let the applier apply
	// everything handed to it and commit, so the snapshot is at the handed
	// index, whose membership raft.db records (applyChanges ran at hand-off;
	// a change handed later cancels the job).
	if err := n.quiesceApplier(func(st *storage.StateDB) error { return st.Commit() }); err != nil {
		n.log.Error().Err(err).Msg("cannot commit state.db; stopping this node")
		return fmt.Errorf("%w: commit state.db: %w", ErrStopped, err)
	}
	n.forceSnapshot = false
	st, err := n.state.Stats()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStopped, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	job := &snapshotJob{cancel: cancel, done: make(chan snapshotResult, 1), waiters: n.snapWaiting, started: time.Now(),
		written: new(atomic.Int64)}
	n.snapWaiting = nil
	n.job = job
	n.stats.snapshotsStarted.Add(1)
	n.snapTrigger.baseline(0)
	// raft.db's membership is the one as of the applied index (applyChanges
	// records each change as it applies), which is the snapshot's.
	_, conf, err := n.raft.InitialState()
	if err != nil {
		return fmt.Errorf("%w: read membership: %w", ErrStopped, err)
	}
	job.conf = conf
	// So is the members record: a node that installs this snapshot learns
	// every member's addresses and the removed ids from it.
	members, err := storage.EncodeMembers(n.members)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStopped, err)
	}
	in := snapshotInputs{state: n.state, raft: n.raft, store: n.store, written: job.written,
		meta: snapshot.Meta{Voters: conf.Voters, Learners: conf.Learners, Members: members}}
	if st.Bloated(n.rebuildMinFreeBytes) {
		// Mostly free pages: copy compactly, and swap the copy in after.
		in.compactTmp = filepath.Join(n.dataDir, compactStateFile)
	}
	go func() { job.done <- writeSnapshot(ctx, in) }()
	return nil
}

// snapshotInputs is everything writeSnapshot uses: objects safe to use
// beside the node loop (state.db and raft.db reads, the store) and values
// fixed when the job starts.
type snapshotInputs struct {
	state *storage.StateDB
	raft  *storage.RaftDB
	store *snapshot.Store
	// meta holds the membership and members record; Index and Term are
	// filled in when the state is read.
	meta    snapshot.Meta
	written *atomic.Int64 // body bytes written so far
	// compactTmp, when set, is where a compact copy of state.db goes first
	// (state.db is mostly free pages); else the body streams straight from
	// a read transaction into the snapshot file.
	compactTmp string
}

// writeSnapshot runs off the node loop. It touches only concurrency-safe
// objects: state.db reads, raft.db reads, the store.
func writeSnapshot(ctx context.Context, in snapshotInputs) snapshotResult {
	if in.compactTmp != "" {
		return writeCompactSnapshot(ctx, in)
	}
	var meta snapshot.Meta
	// One read transaction fixes the snapshot's index (the applied index it
	// sees, durable: it reads only committed transactions) and streams the
	// file, page by page, into the snapshot: nothing of the state is held
	// in memory, and the disk sees the state written once.
	err := in.state.ViewSnapshot(func(applied uint64, write func(io.Writer) (int64, error)) error {
		term, err := in.raft.Term(applied)
		if err != nil {
			return fmt.Errorf("term of the snapshot index %d: %w", applied, err)
		}
		m := in.meta
		m.Index, m.Term = applied, term
		meta, err = in.store.Create(m, func(w io.Writer) (int64, error) {
			return write(ctxWriter{ctx: ctx, w: w, written: in.written})
		})
		return err
	})
	if err != nil {
		return snapshotResult{err: err}
	}
	return snapshotResult{meta: meta}
}

// writeCompactSnapshot copies state.db compactly in one read transaction
// (which fixes the snapshot's index), then writes the snapshot file from
// the copy, which the node loop may swap in as state.db.
func writeCompactSnapshot(ctx context.Context, in snapshotInputs) snapshotResult {
	tmp := in.compactTmp
	applied, err := in.state.CopyCompact(ctx, tmp)
	if err != nil {
		return snapshotResult{err: err}
	}
	fail := func(err error) snapshotResult {
		os.Remove(tmp)
		return snapshotResult{err: err}
	}
	term, err := in.raft.Term(applied)
	if err != nil {
		return fail(fmt.Errorf("term of the snapshot index %d: %w", applied, err))
	}
	f, err := os.Open(tmp)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	m := in.meta
	m.Index, m.Term = applied, term
	meta, err := in.store.Create(m, func(w io.Writer) (int64, error) {
		return io.Copy(ctxWriter{ctx: ctx, w: w, written: in.written}, f)
	})
	if err != nil {
		return fail(err)
	}
	return snapshotResult{meta: meta, compactPath: tmp}
}

// ctxWriter stops a copy when its context is cancelled, and counts.
type ctxWriter struct {
	ctx     context.Context
	w       io.Writer
	written *atomic.Int64
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.w.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// snapshotDone records a finished snapshot in raft.db, compacts the log and
// gives disk back. It returns an error only when the node must stop.
func (n *node) snapshotDone(res snapshotResult) error {
	job := n.job
	n.job = nil
	if res.err != nil {
		n.log.Warn().Err(res.err).Msg("snapshot failed")
		n.snapDeferredUntil = time.Now().Add(snapshotRetryDelay)
		for _, route := range job.waiters {
			n.reply.send(route, wire.ErrorResponse(wire.ErrInternal, "the snapshot failed: "+res.err.Error()))
		}
		return nil
	}
	n.failpoint(fpSnapshotBeforeRecord)
	if res.compactPath != "" {
		defer os.Remove(res.compactPath) // unless swapped in below
	}
	if _, err := n.raft.CreateSnapshot(res.meta.Index, job.conf); err != nil {
		if !errors.Is(err, raftlog.ErrSnapOutOfDate) {
			return fmt.Errorf("%w: record snapshot: %w", ErrStopped, err)
		}
		// A snapshot from the leader, installed meanwhile, is newer.
	} else {
		n.snapIndex = res.meta.Index
		n.stats.snapshotsTaken.Add(1)
	}
	if err := n.compactLog(); err != nil {
		return err
	}
	swapped, err := n.maybeShrinkState(res)
	if err != nil {
		return err
	}
	first, _ := n.raft.FirstIndex()
	n.log.Info().Uint64("index", res.meta.Index).Uint64("term", res.meta.Term).Int64("bytes", res.meta.Size).
		Dur("took", time.Since(job.started)).Uint64("first_index", first).Bool("state_db_rebuilt", swapped).Msg("snapshot taken")
	for _, route := range job.waiters {
		n.reply.send(route, snapshotDone(n.snapIndex))
	}
	return nil
}

// compactLog deletes the log up to snapIndex − trailingEntries (never past
// state.db's durable applied index: a crash re-applies from there) and rebuilds raft.db when most of it is free
// pages.
func (n *node) compactLog() error {
	target := n.snapIndex - min(n.snapIndex, n.trailingEntries)
	target = min(target, n.state.DurableAppliedIndex())
	if first, _ := n.raft.FirstIndex(); target < first {
		return nil
	}
	if err := n.raft.Compact(target); err != nil {
		return fmt.Errorf("%w: compact the log to %d: %w", ErrStopped, target, err)
	}
	st, err := n.raft.Stats()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStopped, err)
	}
	if !st.Bloated(n.rebuildMinFreeBytes) {
		return nil
	}
	start := time.Now()
	if err := n.raft.Rebuild(); err != nil {
		return fmt.Errorf("%w: rebuild raft.db: %w", ErrStopped, err)
	}
	after, _ := n.raft.Stats()
	n.stats.raftRebuilds.Add(1)
	n.log.Info().Int64("bytes_before", st.FileBytes).Int64("bytes_after", after.FileBytes).Dur("took", time.Since(start)).Msg("raft.db rebuilt")
	return nil
}

// maybeShrinkState swaps the compact copy made for the snapshot in as
// state.db when state.db is mostly free pages, then re-applies the entries
// applied since the copy (they are still in the log: compaction stops at
// the snapshot index at most). It reports whether it swapped.
func (n *node) maybeShrinkState(res snapshotResult) (bool, error) {
	if res.compactPath == "" {
		return false, nil // state.db was not bloated when the snapshot began
	}
	st, err := n.state.Stats()
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrStopped, err)
	}
	if !st.Bloated(n.rebuildMinFreeBytes) {
		return false, nil
	}
	start := time.Now()
	// On the applier, with every handed entry applied: the swap and the
	// re-apply are state.db writes.
	err = n.quiesceApplier(func(state *storage.StateDB) error {
		applied := state.AppliedIndex()
		if err := state.Replace(res.compactPath); err != nil {
			return fmt.Errorf("%w: swap in a compact state.db: %w", ErrStopped, err)
		}
		return reapply(state, n.raft, n.maxBatchBytes, applied)
	})
	if err != nil {
		return false, err
	}
	after, _ := n.state.Stats()
	n.stats.stateRebuilds.Add(1)
	n.log.Info().Int64("bytes_before", st.FileBytes).Int64("bytes_after", after.FileBytes).Dur("took", time.Since(start)).Msg("state.db rebuilt")
	return true, nil
}

// reapply applies the log from state.db's applied index up to to. The
// results were computed (and answered) the first time; apply is
// deterministic, so applying again gives the same state.
func reapply(state *storage.StateDB, raft *storage.RaftDB, maxBatchBytes uint64, to uint64) error {
	for lo := state.AppliedIndex() + 1; lo <= to; {
		ents, err := raft.Entries(lo, to+1, maxBatchBytes)
		if err != nil {
			return fmt.Errorf("%w: re-apply from %d: %w", ErrStopped, lo, err)
		}
		if _, err := state.Apply(ents); err != nil {
			return fmt.Errorf("%w: re-apply from %d: %w", ErrStopped, lo, err)
		}
		lo = ents[len(ents)-1].Index + 1
	}
	if got := state.AppliedIndex(); got != to {
		panic(fmt.Sprintf("broker: re-applied state.db to %d, want %d", got, to))
	}
	return nil
}

// cancelSnapshot stops a snapshot in progress and waits for it (its read
// transaction on state.db must end before state.db can be swapped).
func (n *node) cancelSnapshot() {
	if n.job == nil {
		return
	}
	n.job.cancel()
	res := <-n.job.done
	if res.compactPath != "" {
		os.Remove(res.compactPath)
	}
	n.snapWaiting = append(n.job.waiters, n.snapWaiting...)
	n.job = nil
}

// findSnapshot returns the snapshot file for (index, term).
func (n *node) findSnapshot(index, term uint64) (snapshot.Meta, error) {
	metas, listErr := n.store.List()
	for _, m := range metas {
		if m.Index == index && m.Term == term {
			return m, nil
		}
	}
	return snapshot.Meta{}, fmt.Errorf("%w: no intact file for snapshot %d/%d in %s (listing: %v)", snapshot.ErrNotFound, index, term, n.store.Dir(), listErr)
}

// failSnapshotWaiters answers admin snapshot requests with code.
func (n *node) failSnapshotWaiters(code, detail string) {
	for _, route := range n.snapWaiting {
		n.reply.send(route, wire.ErrorResponse(code, detail))
	}
	n.snapWaiting = nil
	if n.job != nil {
		for _, route := range n.job.waiters {
			n.reply.send(route, wire.ErrorResponse(code, detail))
		}
		n.job.waiters = nil
	}
}

// snapshotRetryDelay is how long a node waits before it tries again a
// snapshot that failed or would not fit on the disk.
const snapshotRetryDelay = time.Second

// snapshotFits reports whether a snapshot may start now: not within
// snapshotRetryDelay of one that failed or did not fit, and with room on
// the disk for its two copies of state.db's live pages (the snapshot file
// and the compact copy) plus snapshotSlackBytes for the log meanwhile. It
// may use the guard's reserve (min_free_bytes): that reserve is there so
// that the compaction that gives the disk back can run (decision 19). A
// snapshot that cannot fit would only fill the disk under the node's own
// raft.db writes; as pops shrink the queues it fits again.
func (n *node) snapshotFits() bool {
	now := time.Now()
	if now.Before(n.snapDeferredUntil) {
		return false
	}
	if n.disk == nil || !n.disk.measured.Load() {
		return true // nothing known about the disk: the snapshot will tell
	}
	need := 2*n.state.LiveBytes() + snapshotSlackBytes
	if free := n.disk.free.Load(); free < need {
		n.snapDeferredUntil = now.Add(snapshotRetryDelay)
		if !n.snapDeferredLogged {
			n.snapDeferredLogged = true
			n.log.Warn().Uint64("free_bytes", free).Uint64("need_bytes", need).Msg("snapshot postponed: not enough disk space for it; pops make it smaller")
		}
		return false
	}
	n.snapDeferredLogged = false
	return true
}

// snapshotSlackBytes is the room a snapshot leaves for the log writes made
// while it is written.
const snapshotSlackBytes = 1 * config.MiB
