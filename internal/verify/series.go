package verify

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// SeriesConfig runs rounds of the suite, each on a fresh cluster with the
// next seed, until Rounds rounds ran or Until passed (whichever is set;
// both set: whichever comes first).
type SeriesConfig struct {
	Base   Config // Dir is the parent of the round dirs
	Rounds int
	Until  time.Duration
	// AlternateNodes runs odd rounds on 5 nodes and even ones on 3.
	AlternateNodes bool
}

// SeriesTotals add up a series.
type SeriesTotals struct {
	Rounds      int      `json:"rounds"`
	Failed      int      `json:"failed"` // rounds with violations
	Errors      int      `json:"errors"` // rounds that could not run
	Ops         int      `json:"ops"`
	Acked       int      `json:"acked"`
	Unknown     int      `json:"unknown"`
	Late        int      `json:"late"`
	Faults      int      `json:"faults"`
	Seeds       []uint64 `json:"seeds"`
	FailedSeeds []uint64 `json:"failed_seeds,omitempty"`
}

// RunSeries runs the rounds, writing each round's summary to summary as it
// finishes and the totals at the end. The error is ctx's or a round that
// could not run; violations are counted in the totals.
func RunSeries(ctx context.Context, sc SeriesConfig, summary io.Writer) (SeriesTotals, error) {
	var t SeriesTotals
	start := time.Now()
	var runErr error
	for k := 0; ; k++ {
		if sc.Rounds > 0 && k >= sc.Rounds {
			break
		}
		if sc.Until > 0 && time.Since(start) >= sc.Until {
			break
		}
		if sc.Rounds <= 0 && sc.Until <= 0 && k >= 1 {
			break
		}
		if ctx.Err() != nil {
			runErr = ctx.Err()
			break
		}
		cfg := sc.Base
		cfg.Seed = sc.Base.Seed + uint64(k)
		if sc.AlternateNodes {
			cfg.Nodes = []int{3, 5}[k%2]
		}
		cfg.Dir = filepath.Join(sc.Base.Dir, fmt.Sprintf("round%03d-seed%d", k, cfg.Seed))
		rep, err := Run(ctx, cfg)
		t.Rounds++
		t.Seeds = append(t.Seeds, cfg.Seed)
		if err != nil {
			t.Errors++
			t.FailedSeeds = append(t.FailedSeeds, cfg.Seed)
			fmt.Fprintf(summary, "round %d seed %d (%d nodes): could not run: %v\n  replay: %s\n\n", k, cfg.Seed, cfg.Nodes, err, cfg.ReplayCommand())
			if ctx.Err() != nil {
				runErr = ctx.Err()
				break
			}
			continue
		}
		t.Ops += rep.Ops.Attempted
		t.Acked += rep.Ops.Acked
		t.Unknown += rep.Ops.Unknown
		t.Late += rep.Ops.Late
		t.Faults += len(rep.Events)
		if !rep.OK() {
			t.Failed++
			t.FailedSeeds = append(t.FailedSeeds, cfg.Seed)
		}
		fmt.Fprintf(summary, "round %d:\n", k)
		rep.WriteText(summary)
		fmt.Fprintln(summary)
	}
	seeds := make([]string, len(t.Seeds))
	for i, s := range t.Seeds {
		seeds[i] = fmt.Sprint(s)
	}
	verdict := "PASS"
	if t.Failed+t.Errors > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(summary, "series %s: %d rounds in %v, seeds %s; %d faults; %d ops (%d acked, %d unknown, %d late); %d rounds with violations, %d could not run %v\n",
		verdict, t.Rounds, time.Since(start).Round(time.Second), strings.Join(seeds, ","), t.Faults, t.Ops, t.Acked, t.Unknown, t.Late, t.Failed, t.Errors, t.FailedSeeds)
	return t, runErr
}
