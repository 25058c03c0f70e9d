//go:build failpoints

package broker

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/rs/zerolog"
)

// failpointsEnabled reports whether this build has failpoints compiled in.
const failpointsEnabled = true

// failpointKillMsg is the message of the line logged just before the kill;
// e2e tests look for it (and check that a normal binary lacks it).
const failpointKillMsg = "failpoint reached: killing this process"

var (
	// failpointAt is the hit on which each point kills (0: not armed); set
	// once by init, read-only afterwards.
	failpointAt [numFailpoints]uint64
	// failpointHits counts the hits of each point since the process began.
	failpointHits [numFailpoints]atomic.Uint64
	// failpointKill ends the process; tests replace it.
	failpointKill = func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way: run nothing more
	}
)

// init reads FailpointsEnv once. A bad value stops the process before it
// serves anything: a typo must not silently disarm a test.
func init() {
	at, err := parseFailpoints(os.Getenv(FailpointsEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "raftmq: %v\n", err)
		os.Exit(2)
	}
	failpointAt = at
}

func (n *node) failpoint(p failpoint) { hitFailpoint(n.log, p) }

// hitFailpoint counts a hit of p and, on the armed hit, logs one line naming
// p and kills the process with SIGKILL: nothing buffered is flushed, no
// deferred function runs. (zerolog writes the line synchronously.)
func hitFailpoint(log zerolog.Logger, p failpoint) {
	at := failpointAt[p]
	if at == 0 {
		return
	}
	hit := failpointHits[p].Add(1)
	if hit != at {
		return
	}
	log.Error().Str("failpoint", p.String()).Uint64("hit", hit).Int("pid", os.Getpid()).Msg(failpointKillMsg)
	failpointKill()
}
