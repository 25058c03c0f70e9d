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
// works; New removes leftovers of a crash (an install file only once it
// has served to finish the install it belongs to).
const (
	compactStateFile = "state.db.compact" // compact copy of state.db, swapped in when state.db is bloated
	installPrefix    = "install-"         // install-<snapshot name>.db: a received body ready to swap in
	installSuffix    = ".db"
)

// rebuildMinFreeBytes: a bbolt file is rebuilt when more than this many
// bytes, and more than its live data, are free pages.
const rebuildMinFreeBytes = 16 << 20

// A snapshot in raftmq is state.db itself (decision 26): compaction records
// only the durable applied index, its term and the membership in raft.db
// and deletes the log before it; nothing is copied. A snapshot file exists
// only while a follower needs one: it is written on demand from a bbolt
// read transaction (sendJob), streamed, and deleted when no transfer uses
// it any more.

// jobKind says what a background job writes.
type jobKind uint8

const (
	// jobSend writes a snapshot file for the followers in snapWanted.
	jobSend jobKind = iota + 1
	// jobShrink writes a compact copy of a bloated state.db, swapped in
	// when it is done (decision 7).
	jobShrink
)

// snapshotJob is a snapshot file or a compact copy of state.db being
// written in the background. Invariant: at most one at a time; only the
// node loop starts, cancels and finishes it. While it runs, the log is not
// compacted (the job looks up the term of the index its read transaction
// sees).
type snapshotJob struct {
	kind    jobKind
	cancel  context.CancelFunc
	done    chan snapshotResult // receives exactly once
	started time.Time
	// conf is the membership as of the applied index when the job began;
	// a membership change applied meanwhile cancels the job.
	conf    raftlog.ConfState
	written *atomic.Int64 // bytes written so far, for status
}

type snapshotResult struct {
	meta        snapshot.Meta // jobSend: the file written
	compactPath string        // jobShrink: the compact copy; removed or swapped in by the node loop
	err         error
}

// sendFile is a snapshot file written for followers. Invariant: it exists
// on disk while users > 0 or it is n.sendFile; releaseSendFile deletes it.
type sendFile struct {
	meta  snapshot.Meta
	users int // transfers streaming it
}

// snapshotDone is the answer to an admin snapshot request.
func snapshotDone(index uint64) wire.Response { return wire.Response{Success: true, Index: &index} }

func (n *node) jobDoneCh() <-chan snapshotResult {
	if n.job == nil {
		return nil
	}
	return n.job.done
}

// requestSnapshot is the admin request: compact now, on this node.
func (n *node) requestSnapshot(cr clientRequest) {
	n.snapWaiting = append(n.snapWaiting, cr.route) // the node loop's maybeSnapshot answers it
}

// maybeSnapshot compacts when more than snapshotEntries entries were
// applied since the last compaction or an admin asked, and starts the
// snapshot file that followers wait for. It returns an error only when the
// node must stop.
func (n *node) maybeSnapshot() error {
	if n.job == nil && len(n.snapWanted) > 0 {
		if err := n.startSendJob(); err != nil {
			return err
		}
	}
	applied := n.handed // what state.db holds once the applier catches up
	if applied-n.snapIndex <= n.snapshotEntries && len(n.snapWaiting) == 0 {
		return nil
	}
	if n.job != nil {
		return nil // its read transaction needs the log's terms: compact after it
	}
	if applied == 0 || applied <= n.snapIndex {
		n.answerSnapshotWaiters()
		return nil
	}
	return n.compact()
}

// compact makes every applied entry durable in state.db, records that
// index as raft.db's snapshot (with its term and the membership as of it)
// and deletes the log before it, less trailingEntries. Nothing is copied:
// state.db is the snapshot. Decision 4's rule holds by construction: the
// snapshot index is state.db's durable applied index.
func (n *node) compact() error {
	start := time.Now()
	// The applier applies everything handed to it and commits (decision
	// 24): state.db is then durable at the handed index, whose membership
	// raft.db records (applyChanges runs at hand-off).
	if err := n.quiesceApplier(func(st *storage.StateDB) error { return st.Commit() }); err != nil {
		n.log.Error().Err(err).Msg("cannot commit state.db; stopping this node")
		return fmt.Errorf("%w: commit state.db: %w", ErrStopped, err)
	}
	index := n.state.DurableAppliedIndex()
	n.stats.snapshotsStarted.Add(1)
	// raft.db's membership is the one as of the applied index (applyChanges
	// records each change as it applies), which is the snapshot's.
	_, conf, err := n.raft.InitialState()
	if err != nil {
		return fmt.Errorf("%w: read membership: %w", ErrStopped, err)
	}
	n.failpoint(fpSnapshotBeforeRecord)
	if _, err := n.raft.CreateSnapshot(index, conf); err != nil {
		if !errors.Is(err, raftlog.ErrSnapOutOfDate) {
			return fmt.Errorf("%w: record snapshot: %w", ErrStopped, err)
		}
		// A snapshot from the leader, installed meanwhile, is newer.
	} else {
		n.snapIndex = index
		n.stats.snapshotsTaken.Add(1)
	}
	if err := n.compactLog(); err != nil {
		return err
	}
	first, _ := n.raft.FirstIndex()
	n.log.Debug().Uint64("index", n.snapIndex).Uint64("first_index", first).Dur("took", time.Since(start)).Msg("log compacted")
	n.answerSnapshotWaiters()
	return n.maybeStartShrink()
}

func (n *node) answerSnapshotWaiters() {
	for _, route := range n.snapWaiting {
		if n.snapIndex == 0 {
			n.reply.send(route, wire.ErrorResponse(wire.ErrInternal, "nothing has been applied yet: there is nothing to snapshot"))
		} else {
			n.reply.send(route, snapshotDone(n.snapIndex))
		}
	}
	n.snapWaiting = nil
}

// maybeStartShrink starts a compact copy of state.db when it is mostly free
// pages (decision 7), to be swapped in when done.
func (n *node) maybeStartShrink() error {
	if n.job != nil {
		return nil
	}
	st, err := n.state.Stats()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStopped, err)
	}
	if !st.Bloated(n.rebuildMinFreeBytes) || !n.snapshotFits(1) {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	job := &snapshotJob{kind: jobShrink, cancel: cancel, done: make(chan snapshotResult, 1), started: time.Now(), written: new(atomic.Int64)}
	n.job = job
	tmp := filepath.Join(n.dataDir, compactStateFile)
	state := n.state
	go func() {
		if _, err := state.CopyCompact(ctx, tmp); err != nil {
			job.done <- snapshotResult{err: err}
			return
		}
		job.done <- snapshotResult{compactPath: tmp}
	}()
	return nil
}

// startSendJob writes a snapshot file for the followers waiting for one:
// state.db as one read transaction sees it, at its durable applied index,
// streamed by bbolt's Tx.WriteTo into the file (nothing held in memory).
// It returns an error only when the node must stop.
func (n *node) startSendJob() error {
	if !n.snapshotFits(1) {
		return nil // tried again from the node loop
	}
	// The copy holds what state.db has committed: have the applier apply
	// everything handed to it and commit first, so the file is at the
	// handed index, whose membership raft.db holds now (decision 24).
	if err := n.quiesceApplier(func(st *storage.StateDB) error { return st.Commit() }); err != nil {
		n.log.Error().Err(err).Msg("cannot commit state.db; stopping this node")
		return fmt.Errorf("%w: commit state.db: %w", ErrStopped, err)
	}
	_, conf, err := n.raft.InitialState()
	if err != nil {
		return fmt.Errorf("%w: read membership: %w", ErrStopped, err)
	}
	// So is the members record: a node that installs this snapshot learns
	// every member's addresses and the removed ids from it.
	members, err := storage.EncodeMembers(n.members)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStopped, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	job := &snapshotJob{kind: jobSend, cancel: cancel, done: make(chan snapshotResult, 1), started: time.Now(),
		written: new(atomic.Int64), conf: conf}
	n.job = job
	in := snapshotInputs{state: n.state, raft: n.raft, store: n.store, written: job.written,
		meta: snapshot.Meta{Voters: conf.Voters, Learners: conf.Learners, Members: members}}
	go func() { job.done <- writeSnapshot(ctx, in) }()
	return nil
}

// snapshotInputs is everything writeSnapshot uses: objects safe to use
// beside the node loop (state.db and raft.db reads, the store) and values
// fixed when the job starts.
type snapshotInputs struct {
	state *storage.StateDB
	raft  logStore
	store *snapshot.Store
	// meta holds the membership and members record; Index and Term are
	// filled in when the state is read.
	meta    snapshot.Meta
	written *atomic.Int64 // body bytes written so far
}

// writeSnapshot runs off the node loop. It touches only concurrency-safe
// objects: state.db reads, raft.db reads, the store.
func writeSnapshot(ctx context.Context, in snapshotInputs) snapshotResult {
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

// snapshotDone finishes a background job: a snapshot file goes to the
// followers waiting for it, a compact copy of state.db is swapped in. It
// returns an error only when the node must stop.
func (n *node) snapshotDone(res snapshotResult) error {
	job := n.job
	n.job = nil
	if job.kind == jobShrink {
		if res.err != nil {
			n.log.Warn().Err(res.err).Msg("compact copy of state.db failed")
			n.snapDeferredUntil = time.Now().Add(snapshotRetryDelay)
			return nil
		}
		defer os.Remove(res.compactPath) // unless swapped in
		_, err := n.maybeShrinkState(res)
		return err
	}
	if res.err != nil {
		n.log.Warn().Err(res.err).Msg("snapshot for followers failed")
		n.snapDeferredUntil = time.Now().Add(snapshotRetryDelay)
		for peer := range n.snapWanted {
			n.core.ReportSnapshot(peer, false)
		}
		clear(n.snapWanted)
		return nil
	}
	n.failpoint(fpSendFileWritten)
	f := &sendFile{meta: res.meta}
	n.sendFile = f
	n.log.Info().Uint64("index", res.meta.Index).Uint64("term", res.meta.Term).Int64("bytes", res.meta.Size).
		Dur("took", time.Since(job.started)).Int("followers", len(n.snapWanted)).Msg("snapshot file written for followers")
	for peer, m := range n.snapWanted {
		n.runSender(m, f)
		delete(n.snapWanted, peer)
	}
	n.releaseSendFile(f)
	return nil
}

// releaseSendFile deletes f when no transfer streams it and no follower
// waits for it.
func (n *node) releaseSendFile(f *sendFile) {
	if f == nil || f.users > 0 {
		return
	}
	if n.sendFile == f {
		n.sendFile = nil
	}
	if err := n.store.Remove(f.meta.Name()); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
		n.log.Warn().Err(err).Msg("cannot delete a sent snapshot file")
	}
}

// compactLog deletes the log up to snapIndex − trailingEntries (never past
// state.db's durable applied index: a crash re-applies from there) and
// rebuilds raft.db when most of it is free pages. An operator's snapshot
// request deletes at once; an automatic compaction is scheduled in steps
// that ride in the next Saves (CompactLater): deleting ten thousand entries
// in one transaction stopped the loop for 12-55 ms.
func (n *node) compactLog() error {
	target := n.snapIndex - min(n.snapIndex, n.trailingEntries)
	target = min(target, n.state.DurableAppliedIndex())
	if first, _ := n.raft.FirstIndex(); target < first {
		return nil
	}
	compact := n.raft.CompactLater
	if len(n.snapWaiting) > 0 {
		compact = n.raft.Compact
	}
	if err := compact(target); err != nil {
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

// maybeShrinkState swaps the compact copy in as state.db when state.db is
// still mostly free pages, then re-applies the entries applied since the
// copy (they are still in the log: compaction waits while a job runs and
// never passes the durable applied index). It reports whether it swapped.
func (n *node) maybeShrinkState(res snapshotResult) (bool, error) {
	st, err := n.state.Stats()
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrStopped, err)
	}
	if !st.Bloated(n.rebuildMinFreeBytes) {
		return false, nil
	}
	start := time.Now()
	// On the applier, with every handed entry applied: the swap and the
	// re-apply are state.db writes (decision 24).
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
func reapply(state *storage.StateDB, raft raftlog.Storage, maxBatchBytes uint64, to uint64) error {
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

// cancelSnapshot stops the job in progress and waits for it (its read
// transaction on state.db must end before state.db can be swapped).
// Followers waiting for a snapshot file are told it failed; the core
// offers them one again.
func (n *node) cancelSnapshot() {
	if n.job == nil {
		return
	}
	job := n.job
	n.job = nil
	job.cancel()
	res := <-job.done
	switch {
	case res.compactPath != "":
		os.Remove(res.compactPath)
	case job.kind == jobSend && res.err == nil:
		n.releaseSendFile(&sendFile{meta: res.meta})
	}
	if job.kind == jobSend {
		for peer := range n.snapWanted {
			n.core.ReportSnapshot(peer, false)
		}
		clear(n.snapWanted)
	}
}

// failSnapshotWaiters answers admin snapshot requests with code.
func (n *node) failSnapshotWaiters(code, detail string) {
	for _, route := range n.snapWaiting {
		n.reply.send(route, wire.ErrorResponse(code, detail))
	}
	n.snapWaiting = nil
}

// snapshotRetryDelay is how long a node waits before it tries again a
// snapshot file or compact copy that failed or would not fit on the disk.
const snapshotRetryDelay = time.Second

// snapshotFits reports whether a job writing copies copies of state.db's
// live pages may start now: not within snapshotRetryDelay of one that
// failed or did not fit, and with room on the disk for them plus
// snapshotSlackBytes for the log meanwhile. It may use the guard's reserve
// (min_free_bytes): that reserve is there so that the work that gives the
// disk back can run (decision 19). A copy that cannot fit would only fill
// the disk under the node's own raft.db writes; as pops shrink the queues
// it fits again.
func (n *node) snapshotFits(copies uint64) bool {
	now := time.Now()
	if now.Before(n.snapDeferredUntil) {
		return false
	}
	if n.disk == nil || !n.disk.measured.Load() {
		return true // nothing known about the disk: the copy will tell
	}
	need := copies*n.state.LiveBytes() + snapshotSlackBytes
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
