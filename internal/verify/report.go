package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// lateAfter: an operation that took longer than this counts as having
// timed out once (it was resent until answered).
const lateAfter = 5 * time.Second

// OpCounts summarize the history.
type OpCounts struct {
	Attempted int `json:"attempted"`
	Acked     int `json:"acked"`  // executed, success true
	Failed    int `json:"failed"` // executed, success false (empty queue)
	Unknown   int `json:"unknown"`
	// Late were answered only after lateAfter (resent with the same
	// client_id/seq through faults, then answered).
	Late           int `json:"late"`
	DroppedReplies int `json:"dropped_replies"` // executed replies discarded and resent
	Drain          int `json:"drain_pops"`
	Puts           int `json:"puts"`
	Pops           int `json:"pops"`
	// Unresolved pending ops after healing (a subset of Unknown).
	Unresolved int `json:"unresolved"`
}

func (c *OpCounts) count(ops []Op) {
	for _, op := range ops {
		c.Attempted++
		switch op.Status {
		case StatusOK:
			c.Acked++
		case StatusFail:
			c.Failed++
		default:
			c.Unknown++
		}
		if op.Status != StatusUnknown && op.Return-op.Call > lateAfter {
			c.Late++
		}
		c.DroppedReplies += op.Dropped
		if op.Drain {
			c.Drain++
		}
		if op.Kind == OpPut {
			c.Puts++
		} else {
			c.Pops++
		}
	}
}

// Report is one run's outcome.
type Report struct {
	Seed     uint64        `json:"seed"`
	Nodes    int           `json:"nodes"`
	Duration time.Duration `json:"duration"`
	Families []string      `json:"families"`
	Skipped  []string      `json:"skipped,omitempty"`
	Network  string        `json:"network"`
	Dir      string        `json:"dir"`
	Replay   string        `json:"replay"`
	Started  time.Time     `json:"started"`
	Elapsed  time.Duration `json:"elapsed"`
	Topics   int           `json:"topics"`

	Events []Event      `json:"events"`
	Ops    OpCounts     `json:"ops"`
	Linear LinearResult `json:"linearizability"`
	Queue  QueueResult  `json:"total_queue"`
	Lease  *LeaseResult `json:"leased_delivery,omitempty"`
	Node   NodeResult   `json:"nodes_final"`
	// MinorityAcks: acknowledgements from nodes cut off in a minority.
	MinorityAcks []string `json:"minority_acks,omitempty"`
	// RetryMismatches: a resend (same client_id/seq) answered differently.
	RetryMismatches []string `json:"retry_mismatches,omitempty"`
	// Crashes: panics, races or fatal errors in the broker logs.
	Crashes   []string `json:"crashes,omitempty"`
	HealNotes []string `json:"heal_notes,omitempty"`
	// Errors: the run could not complete a step (drain, leader after heal).
	Errors []string `json:"errors,omitempty"`
	Notes  []string `json:"notes,omitempty"`
}

// Violations lists every checker that failed, one line each.
func (r *Report) Violations() []string {
	var v []string
	if n := len(r.Linear.Illegal); n > 0 {
		v = append(v, fmt.Sprintf("linearizability: %d topic(s) not linearizable: %s (see %s)", n, strings.Join(r.Linear.Illegal, " "), r.Linear.Visualization))
	}
	if !r.Queue.OK() {
		v = append(v, fmt.Sprintf("total queue: lost %d (prefix %d, middle %d, suffix %d), duplicated %d, never sent %d, wrong topic %d",
			r.Queue.Lost(), r.Queue.LostPrefix, r.Queue.LostMiddle, r.Queue.LostSuffix, r.Queue.Duplicated, r.Queue.NeverSent, r.Queue.WrongTopic))
	}
	if l := r.Lease; l != nil && !l.OK() {
		v = append(v, fmt.Sprintf("leased delivery: lost %d, duplicated %d, never sent %d, stale receipts accepted %d, bad delivery counts %d: %s",
			l.Lost, l.Duplicated, l.NeverSent, l.StaleAccepted, l.BadCounts, strings.Join(first(l.Examples, 3), "; ")))
	}
	if !r.Node.OK() {
		v = append(v, fmt.Sprintf("final state: %d problem(s): %s", len(r.Node.Problems), strings.Join(first(r.Node.Problems, 5), "; ")))
	}
	if n := len(r.MinorityAcks); n > 0 {
		v = append(v, fmt.Sprintf("minority acknowledged %d request(s): %s", n, strings.Join(first(r.MinorityAcks, 3), "; ")))
	}
	for _, ev := range r.Events {
		for _, sl := range ev.StaleLeaders {
			v = append(v, fmt.Sprintf("CheckQuorum: %s (%s)", sl, ev.Fault))
		}
	}
	if n := len(r.RetryMismatches); n > 0 {
		v = append(v, fmt.Sprintf("exactly-once: %d resend(s) answered differently: %s", n, strings.Join(first(r.RetryMismatches, 3), "; ")))
	}
	if n := len(r.Crashes); n > 0 {
		v = append(v, fmt.Sprintf("broker crash: %d line(s): %s", n, strings.Join(first(r.Crashes, 3), "; ")))
	}
	for _, e := range r.Errors {
		v = append(v, "run: "+e)
	}
	return v
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// OK reports a run with no violation. Topics the linearizability checker
// could not decide in time are not violations (not proven either: see
// Linear.Unknown).
func (r *Report) OK() bool { return len(r.Violations()) == 0 }

// WriteText writes the human summary.
func (r *Report) WriteText(w io.Writer) {
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "raftmq chaos run: %s\n", verdict)
	fmt.Fprintf(w, "  seed %d, %d nodes, %v of faults (%v in all), %s\n", r.Seed, r.Nodes, r.Duration, r.Elapsed.Round(time.Second), r.Network)
	fmt.Fprintf(w, "  replay: %s\n  dir: %s\n", r.Replay, r.Dir)
	fmt.Fprintf(w, "  families: %s\n", strings.Join(r.Families, ","))
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "  skipped: %s\n", s)
	}
	fmt.Fprintf(w, "faults injected (%d):\n", len(r.Events))
	for _, e := range r.Events {
		fmt.Fprintf(w, "  %s\n", e)
	}
	o := r.Ops
	fmt.Fprintf(w, "operations: %d attempted (%d puts, %d pops, %d of them the final drain) on %d topics\n", o.Attempted, o.Puts, o.Pops, o.Drain, r.Topics)
	fmt.Fprintf(w, "  acked %d, answered no %d, unknown %d, late %d (> %v, resent until answered), replies dropped and resent %d\n",
		o.Acked, o.Failed, o.Unknown, o.Late, lateAfter, o.DroppedReplies)
	fmt.Fprintf(w, "checkers:\n")
	lin := "ok"
	if len(r.Linear.Illegal) > 0 {
		lin = "ILLEGAL " + strings.Join(r.Linear.Illegal, " ") + " → " + r.Linear.Visualization
	}
	fmt.Fprintf(w, "  linearizability (porcupine, FIFO per topic): %d/%d topics ok, %d undecided; %s\n", r.Linear.Ok, r.Linear.Topics, len(r.Linear.Unknown), lin)
	q := r.Queue
	fmt.Fprintf(w, "  total queue: %d puts acked, %d popped, %d recovered; lost %d (prefix %d middle %d suffix %d), explained by unknown pops %d, duplicated %d, never sent %d, wrong topic %d\n",
		q.Acked, q.Popped, q.Recovered, q.Lost(), q.LostPrefix, q.LostMiddle, q.LostSuffix, q.LostExplained, q.Duplicated, q.NeverSent, q.WrongTopic)
	for _, e := range q.Examples {
		fmt.Fprintf(w, "    %s\n", e)
	}
	if l := r.Lease; l != nil {
		fmt.Fprintf(w, "  leased delivery: %d puts acked, %d receives, %d acked, %d dead-lettered, %d stale receipts refused; lost %d, duplicated %d, never sent %d, stale accepted %d, bad delivery counts %d\n",
			l.Puts, l.Receives, l.Acked, l.DeadLettered, l.StaleRefused, l.Lost, l.Duplicated, l.NeverSent, l.StaleAccepted, l.BadCounts)
		for _, e := range l.Examples {
			fmt.Fprintf(w, "    %s\n", e)
		}
	}
	fmt.Fprintf(w, "  final state: converged %v, log %d..%d compared on every node, %d problem(s)\n", r.Node.Converged, r.Node.LogCompared[0], r.Node.LogCompared[1], len(r.Node.Problems))
	for _, p := range r.Node.Problems {
		fmt.Fprintf(w, "    %s\n", p)
	}
	fmt.Fprintf(w, "  minority acks: %d; exactly-once resend mismatches: %d; broker crashes: %d\n", len(r.MinorityAcks), len(r.RetryMismatches), len(r.Crashes))
	for _, group := range [][]string{first(r.MinorityAcks, 10), first(r.RetryMismatches, 10), first(r.Crashes, 10), r.Errors, r.HealNotes, r.Notes} {
		for _, s := range group {
			fmt.Fprintf(w, "    %s\n", s)
		}
	}
	for _, v := range r.Violations() {
		fmt.Fprintf(w, "VIOLATION %s\n", v)
	}
}

// save writes report.json and summary.txt into dir.
func (r *Report) save(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("chaos: report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644); err != nil {
		return fmt.Errorf("chaos: report: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "summary.txt"))
	if err != nil {
		return fmt.Errorf("chaos: summary: %w", err)
	}
	r.WriteText(f)
	return f.Close()
}
