package broker

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/storage"
)

// applyQueueBatches bounds the batches of committed entries handed to the
// applier and not yet applied. Each is at most the core's
// MaxCommittedSizePerReady, so this bounds their memory too; a full queue
// makes the raft loop wait (back-pressure) instead of growing it.
const applyQueueBatches = 16

// applier is the goroutine that owns state.db's writes (decision 24). The
// raft loop hands it committed entries in log order; it applies them,
// commits state.db in groups (decision 4) and reports each batch's results
// back, so the raft loop takes its next Ready while state.db works. The
// raft loop answers the clients from the results (it owns the request
// registry).
//
// Every write to state.db happens on this goroutine: batches, group
// commits, and the rare exclusive work (a snapshot's commit, an install's
// swap, a rebuild's swap and re-apply) that the raft loop runs through do,
// which also waits for every batch before it. Reads may run anywhere
// (StateDB is safe for that).
type applier struct {
	state     *storage.StateDB
	log       zerolog.Logger
	failpoint func(failpoint)

	tasks  chan applyTask // bounded: back-pressure on the raft loop
	exited chan struct{}
	stop   sync.Once

	mu      sync.Mutex
	done    []applyDone   // guarded by mu; unbounded, so the applier never waits for the raft loop
	doneCh  chan struct{} // capacity 1: done is not empty
	durable atomic.Uint64 // state.db's durable applied index, for status without its lock
}

// applyTask is one batch of committed entries, or exclusive work (fn) that
// runs once every batch before it is applied.
type applyTask struct {
	ents   []raftlog.Entry
	fn     func(*storage.StateDB) error
	fnDone chan error
}

// applyDone reports one applied batch: its results, the index of its last
// entry, or the error that stopped the applier (sticky: later batches are
// not applied).
type applyDone struct {
	results []storage.Applied
	last    uint64
	err     error
}

func newApplier(state *storage.StateDB, log zerolog.Logger, fp func(failpoint)) *applier {
	a := &applier{state: state, log: log, failpoint: fp, tasks: make(chan applyTask, applyQueueBatches),
		exited: make(chan struct{}), doneCh: make(chan struct{}, 1)}
	a.durable.Store(state.DurableAppliedIndex())
	go a.run()
	return a
}

// submit hands a batch of committed entries over, in log order. It blocks
// while applyQueueBatches batches wait. The entries' slice is copied (the
// core may reuse its backing array); their data is shared and never
// written.
func (a *applier) submit(ents []raftlog.Entry) {
	a.tasks <- applyTask{ents: append([]raftlog.Entry(nil), ents...)}
}

// do runs fn on the applier once every batch submitted before it is
// applied, and waits for it. The results of those batches are in the
// mailbox (take) when it returns.
func (a *applier) do(fn func(*storage.StateDB) error) error {
	ch := make(chan error, 1)
	a.tasks <- applyTask{fn: fn, fnDone: ch}
	return <-ch
}

// doneC is ready when applied batches wait in the mailbox.
func (a *applier) doneC() <-chan struct{} { return a.doneCh }

// take removes and returns every applied batch reported so far, in order.
func (a *applier) take() []applyDone {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.done
	a.done = nil
	return out
}

// close stops the applier after it has applied every batch submitted, and
// waits for it. state.db's pending group is committed by its Close.
func (a *applier) close() {
	a.stop.Do(func() { close(a.tasks) })
	<-a.exited
}

func (a *applier) report(d applyDone) {
	a.mu.Lock()
	a.done = append(a.done, d)
	a.mu.Unlock()
	select {
	case a.doneCh <- struct{}{}:
	default:
	}
}

func (a *applier) run() {
	defer close(a.exited)
	// Group commits are due by time too (decision 4): check a few times
	// per GroupDelay while idle.
	ticker := time.NewTicker(stateGroupDelay / 4)
	defer ticker.Stop()
	var failed error // sticky: nothing is applied after it
	for {
		select {
		case t, ok := <-a.tasks:
			if !ok {
				return
			}
			failed = a.handle(t, failed)
		case now := <-ticker.C:
			if failed != nil {
				continue
			}
			if err := a.state.CommitIfDue(now); err != nil {
				a.log.Error().Err(err).Msg("cannot commit state.db; stopping this node")
				failed = fmt.Errorf("%w: commit state.db: %w", ErrStopped, err)
				a.report(applyDone{err: failed})
				continue
			}
			a.durable.Store(a.state.DurableAppliedIndex())
		}
	}
}

// handle runs one task and returns the sticky failure, if any.
func (a *applier) handle(t applyTask, failed error) error {
	if t.fn != nil {
		err := failed
		if err == nil {
			err = t.fn(a.state)
			a.durable.Store(a.state.DurableAppliedIndex())
		}
		t.fnDone <- err
		return failed
	}
	if failed != nil {
		return failed
	}
	a.failpoint(fpStateBeforeCommit)
	results, err := a.state.Apply(t.ents)
	if err != nil {
		a.log.Error().Err(err).Msg("cannot apply committed entries; stopping this node")
		failed = fmt.Errorf("%w: apply: %w", ErrStopped, err)
		a.report(applyDone{err: failed})
		return failed
	}
	a.failpoint(fpStateAfterCommit)
	a.durable.Store(a.state.DurableAppliedIndex())
	a.report(applyDone{results: results, last: t.ents[len(t.ents)-1].Index})
	return nil
}
