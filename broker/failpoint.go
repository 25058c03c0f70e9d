package broker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Crash points around the fsyncs, for the process-level tests
// (e2e/failpoint_test.go). They are compiled in only with the build tag
// `failpoints` (failpoint_on.go); in a normal build node.failpoint is an
// empty function (failpoint_off.go) and nothing reads FailpointsEnv.
//
// Armed by the environment, read once when the process starts:
//
//	RAFTMQ_FAILPOINTS="log-after-persist=3,before-reply=10"
//
// kills the process with SIGKILL on the 3rd hit of log-after-persist (or
// the 10th of before-reply, whichever comes first), after logging one line
// that names the point. An unknown name or a bad count is refused at start.

// FailpointsEnv is the environment variable that arms failpoints.
const FailpointsEnv = "RAFTMQ_FAILPOINTS"

// ErrBadFailpoints is returned for a FailpointsEnv value that does not
// parse: an unknown point, a count that is not a positive integer, or a
// point named twice.
var ErrBadFailpoints = errors.New("broker: bad " + FailpointsEnv)

// failpoint is one crash point. Its name is in failpointNames.
type failpoint int

const (
	// fpLogBeforePersist: a Ready has entries or hard state; raft.db's Save
	// has not run.
	fpLogBeforePersist failpoint = iota
	// fpLogAfterPersist: Save returned; of the Ready's messages only a
	// leader's appends and heartbeats (SendBeforePersist) are sent.
	fpLogAfterPersist
	// fpStateBeforeCommit: committed entries are about to be applied to
	// state.db.
	fpStateBeforeCommit
	// fpStateAfterCommit: state.db's Apply returned (its group transaction
	// may still be open: the entries are durable only in raft.db); no
	// reply is sent.
	fpStateAfterCommit
	// fpBeforeReply: the reply to one applied request is about to be sent.
	fpBeforeReply
	// fpSnapshotBeforeRecord: a compaction committed state.db; raft.db
	// does not record the snapshot (its durable applied index) yet.
	fpSnapshotBeforeRecord
	// fpInstallBetweenSwaps: raft.db is reset to a received snapshot;
	// state.db is not yet swapped for its body.
	fpInstallBetweenSwaps
	// fpSendFileWritten: a leader wrote and synced a snapshot file for a
	// follower; no transfer streams it yet.
	fpSendFileWritten
	numFailpoints
)

// failpointNames is the one table of failpoint names.
var failpointNames = [numFailpoints]string{
	fpLogBeforePersist:     "log-before-persist",
	fpLogAfterPersist:      "log-after-persist",
	fpStateBeforeCommit:    "state-before-commit",
	fpStateAfterCommit:     "state-after-commit",
	fpBeforeReply:          "before-reply",
	fpSnapshotBeforeRecord: "snapshot-before-record",
	fpInstallBetweenSwaps:  "install-between-swaps",
	fpSendFileWritten:      "snapshot-file-written",
}

func (p failpoint) String() string { return failpointNames[p] }

// FailpointNames lists every failpoint name, in the table's order.
func FailpointNames() []string { return append([]string(nil), failpointNames[:]...) }

// maxFailpointHits bounds a count: a point is reached at most once per
// proposal or Ready, so a larger count is a mistake.
const maxFailpointHits = 1 << 30

// parseFailpoints parses a FailpointsEnv value into the hit on which each
// point kills the process (0: not armed). An empty spec arms nothing.
func parseFailpoints(spec string) ([numFailpoints]uint64, error) {
	var at [numFailpoints]uint64
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return at, nil
	}
	for _, item := range strings.Split(spec, ",") {
		name, count, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return at, fmt.Errorf("%w: %q is not name=hit (for example log-after-persist=3)", ErrBadFailpoints, item)
		}
		p, found := lookupFailpoint(name)
		if !found {
			return at, fmt.Errorf("%w: unknown failpoint %q; known: %s", ErrBadFailpoints, name, strings.Join(failpointNames[:], ", "))
		}
		n, err := strconv.ParseUint(count, 10, 64)
		if err != nil || n == 0 || n > maxFailpointHits {
			return at, fmt.Errorf("%w: %s=%s: the hit must be an integer in [1, %d]", ErrBadFailpoints, name, count, maxFailpointHits)
		}
		if at[p] != 0 {
			return at, fmt.Errorf("%w: %s is named twice", ErrBadFailpoints, name)
		}
		at[p] = n
	}
	return at, nil
}

func lookupFailpoint(name string) (failpoint, bool) {
	for p, n := range failpointNames {
		if n == name {
			return failpoint(p), true
		}
	}
	return 0, false
}
