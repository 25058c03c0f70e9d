package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a ')' in it: fields count from the
	// last ')'. utime 1234, stime 56.
	line := "4242 (raft mq) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 56 0 0 20 0 12 0 100 2000000 3000 18446744073709551615\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil || got != 1234+56 {
		t.Fatalf("parseStatCPU = %d, %v; want 1290", got, err)
	}
	if _, err := parseStatCPU([]byte("4242 (short) S 1 2 3")); err == nil {
		t.Fatal("parseStatCPU of a short line: no error")
	}
	if _, err := parseStatCPU([]byte("no name here")); err == nil {
		t.Fatal("parseStatCPU without a command name: no error")
	}
}

func TestParseIOWriteBytes(t *testing.T) {
	io := "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 81920\ncancelled_write_bytes: 0\n"
	if got, ok := parseIOWriteBytes([]byte(io)); !ok || got != 81920 {
		t.Fatalf("parseIOWriteBytes = %d, %v; want 81920", got, ok)
	}
	if _, ok := parseIOWriteBytes([]byte("rchar: 10\n")); ok {
		t.Fatal("parseIOWriteBytes without the line: ok")
	}
}

func TestReadProcCostOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	before, err := ReadProcCost([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the clock-tick counter moves (at most a few ticks of
	// 10 ms); a counter read from the wrong fields would not move.
	deadline := time.Now().Add(5 * time.Second)
	var after ProcCost
	for x := 0; ; x++ {
		if x%1_000_000 == 0 {
			if after, err = ReadProcCost([]int{os.Getpid()}); err != nil {
				t.Fatal(err)
			}
			if after.CPU > before.CPU || time.Now().After(deadline) {
				break
			}
		}
	}
	if after.CPU <= before.CPU {
		t.Fatalf("CPU time did not move in 5 s of spinning: %v -> %v", before.CPU, after.CPU)
	}
}

func TestDeepCPURatioAndText(t *testing.T) {
	steps := []DeepStep{
		{Phase: PhasePut, DepthAfter: 50, Ops: 50, PerSec: 1000, BrokerCPUPerOp: 200 * time.Microsecond, WriteBytesPerOp: 3000, BenchCPUPerOp: 90 * time.Microsecond, OtherCores: 0.75},
		{Phase: PhasePop, DepthAfter: 0, Ops: 50, PerSec: 2000, BrokerCPUPerOp: 100 * time.Microsecond},
		{Phase: PhasePut, DepthAfter: 100, Ops: 50, PerSec: 700, BrokerCPUPerOp: 210 * time.Microsecond},
		{Phase: PhasePop, DepthAfter: 50, Ops: 50, PerSec: 1000, BrokerCPUPerOp: 130 * time.Microsecond},
	}
	r := DeepReport{Steps: steps, PutCPURatio: cpuRatio(steps, PhasePut), PopCPURatio: cpuRatio(steps, PhasePop)}
	if r.PutCPURatio != 1.05 || r.PopCPURatio != 1.3 {
		t.Fatalf("CPU ratios put %v pop %v, want 1.05 and 1.3", r.PutCPURatio, r.PopCPURatio)
	}
	if got := cpuRatio([]DeepStep{{Phase: PhasePut}, {Phase: PhasePut, BrokerCPUPerOp: 1}}, PhasePut); got != 0 {
		t.Fatalf("cpuRatio with an unknown first step = %v, want 0", got)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"broker CPU µs/op", "put 1.05, pop 1.30", "  200  ", "  3000  ", "  90  ", "0.75"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

func TestParseStatBusy(t *testing.T) {
	stat := "cpu  100 2 30 5000 70 4 5 6 0 0\ncpu0 50 1 15 2500 35 2 2 3 0 0\n"
	// user 100 + nice 2 + system 30 + irq 4 + softirq 5 + steal 6; not
	// idle (5000) nor iowait (70).
	if got, err := parseStatBusy([]byte(stat)); err != nil || got != 147 {
		t.Fatalf("parseStatBusy = %d, %v; want 147", got, err)
	}
	if _, err := parseStatBusy([]byte("intr 1 2 3\n")); err == nil {
		t.Fatal("parseStatBusy of a line that is not the cpu total: no error")
	}
}
