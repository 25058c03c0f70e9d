package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcStatus(t *testing.T) {
	m, err := parseProcStatus(7, []byte("Name:\tx\nVmRSS:\t  2048 kB\nRssAnon:\t 1024 kB\n"))
	if err != nil || m != (ProcMem{PID: 7, RSSBytes: 2 << 20, AnonBytes: 1 << 20}) {
		t.Fatalf("parseProcStatus = %+v, %v", m, err)
	}
	for _, bad := range []string{"VmRSS:\t2048 kB\n", "VmRSS:\t2048 MB\nRssAnon:\t1 kB\n", "VmRSS:\tx kB\nRssAnon:\t1 kB\n"} {
		if _, err := parseProcStatus(7, []byte(bad)); err == nil {
			t.Errorf("parseProcStatus(%q) = nil error", bad)
		}
	}
}

func TestDeepConfigValidate(t *testing.T) {
	ok := DeepConfig{Clients: 64, SizeBytes: 256, Messages: 100, Step: 50, Topic: "deep"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", ok, err)
	}
	for name, edit := range map[string]func(*DeepConfig){
		"no clients":     func(c *DeepConfig) { c.Clients = 0 },
		"zero step":      func(c *DeepConfig) { c.Step = 0 },
		"under one step": func(c *DeepConfig) { c.Messages = 49 },
		"no topic":       func(c *DeepConfig) { c.Topic = "" },
		"huge messages":  func(c *DeepConfig) { c.SizeBytes = MaxSizeBytes + 1 },
	} {
		c := ok
		edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate(%+v) = nil", name, c)
		}
	}
}

func TestDeepRatiosAndText(t *testing.T) {
	steps := []DeepStep{
		{Phase: PhasePut, DepthAfter: 50, Ops: 50, PerSec: 1000, P99: 2 * time.Millisecond, Procs: []ProcMem{{PID: 1, RSSBytes: 40 << 20, AnonBytes: 10 << 20}}},
		{Phase: PhasePop, DepthAfter: 0, Ops: 50, PerSec: 2000},
		{Phase: PhasePut, DepthAfter: 100, Ops: 50, PerSec: 900},
		{Phase: PhasePop, DepthAfter: 50, Ops: 50, PerSec: 1000, Errors: 1, FirstError: "boom"},
	}
	r := DeepReport{Clients: 2, SizeBytes: 256, Topic: "deep", Steps: steps,
		PutRatio: ratio(steps, PhasePut), PopRatio: ratio(steps, PhasePop)}
	if r.PutRatio != 0.9 || r.PopRatio != 0.5 {
		t.Fatalf("ratios put %v pop %v, want 0.9 and 0.5", r.PutRatio, r.PopRatio)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"phase  depth after", "put 0.90, pop 0.50", "pop to depth 50: 1 errors, first: boom", "   40  "} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

func TestSamplePeaks(t *testing.T) {
	if _, err := ReadProcMem(os.Getpid()); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	stop := samplePeaks([]int{os.Getpid()}, time.Millisecond)
	peaks := stop()
	if len(peaks) != 1 || peaks[0] <= 0 {
		t.Fatalf("samplePeaks of this process = %v, want one positive value", peaks)
	}
	if got := samplePeaks(nil, time.Millisecond)(); len(got) != 0 {
		t.Fatalf("samplePeaks of no process = %v", got)
	}
}
