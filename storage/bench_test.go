package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

// BenchmarkSave measures one Save (one transaction, one fsync) of n entries
// of 256 bytes; entries/s = n * (1 / time per op).
func BenchmarkSave(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			r, err := OpenRaftDB(filepath.Join(b.TempDir(), "raft.db"), testCluster)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			data := make([]byte, 256)
			batch := make([]raftlog.Entry, n)
			next := uint64(1)
			b.SetBytes(int64(256 * n))
			b.ResetTimer()
			for b.Loop() {
				for i := range batch {
					batch[i] = raftlog.Entry{Index: next, Term: 1, Type: raftlog.EntryNormal, Data: data}
					next++
				}
				if err := r.Save(raftlog.HardState{Term: 1, Vote: 1, Commit: next - 1}, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "entries/fsync")
		})
	}
}

// BenchmarkApply measures one Apply of a 64-entry batch (one transaction,
// one fsync): 32 puts of 256 B then 32 pops on one topic, half with sessions.
func BenchmarkApply(b *testing.B) {
	s, err := OpenStateDB(filepath.Join(b.TempDir(), "state.db"), StateOptions{MaxSessions: 10000})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Apply([]raftlog.Entry{cmdEntry(1, create("bench"))}); err != nil {
		b.Fatal(err)
	}
	msg := string(make([]byte, 256))
	next := uint64(2)
	batch := make([]raftlog.Entry, 64)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range batch {
			c := put("bench", msg)
			if j >= 32 {
				c = pop("bench")
			}
			if j%2 == 0 {
				c = withSession(c, fmt.Sprintf("client-%d", j), uint64(i+1))
			}
			batch[j] = cmdEntry(next, c)
			next++
		}
		out, err := s.Apply(batch)
		if err != nil || len(out) != len(batch) {
			b.Fatalf("Apply: %d results, %v", len(out), err)
		}
	}
	b.ReportMetric(64, "entries/fsync")
}

// BenchmarkSaveSteady is raft.db as a busy broker keeps it: Saves of 16
// entries of 256 B with the hard state, the log compacted to its last 1000
// entries every 10000 (the broker's defaults), so the file holds free
// pages. It reports the bytes each Save hands to write(2) and pwrite(2)
// (the freelist, the log pages and the meta page) besides its time.
func BenchmarkSaveSteady(b *testing.B) {
	r, err := OpenRaftDB(filepath.Join(b.TempDir(), "raft.db"), testCluster)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	data := make([]byte, 256)
	batch := make([]raftlog.Entry, 16)
	next := uint64(1)
	save := func() {
		for i := range batch {
			batch[i] = raftlog.Entry{Index: next, Term: 1, Type: raftlog.EntryNormal, Data: data}
			next++
		}
		if err := r.Save(raftlog.HardState{Term: 1, Vote: 1, Commit: next - 1}, batch); err != nil {
			b.Fatal(err)
		}
		if last := next - 1; last%10000 < uint64(len(batch)) && last > 1000 {
			if err := r.Compact(last - 1000); err != nil {
				b.Fatal(err)
			}
		}
	}
	for range 2000 { // 32000 entries: three compactions behind it
		save()
	}
	w0 := writtenBytes(b)
	b.ResetTimer()
	for b.Loop() {
		save()
	}
	b.StopTimer()
	b.ReportMetric(float64(writtenBytes(b)-w0)/float64(b.N), "wbytes/save")
}

// cpuTime is this process's CPU time (user and system) in nanoseconds.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Skipf("getrusage: %v", err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// writtenBytes is this process's wchar: bytes passed to write calls.
func writtenBytes(b *testing.B) uint64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io")
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	b.Skip("no wchar in /proc/self/io")
	return 0
}

// BenchmarkApplyAtDepth is state.db as the applier drives it under a put
// or a pop load (issue 14): one op applies 300 puts of 256 B (or 300 pops)
// with sessions, about one 100 ms group at 3,000 ops/s, and commits the
// group. Puts run on an empty queue and on one a million deep, pops on one
// 200,000 deep (the benchmark's few thousand pops never empty it) and a
// million deep. It reports the CPU per operation and the bytes each commit
// hands to write(2)/pwrite(2); the fill is untimed.
func BenchmarkApplyAtDepth(b *testing.B) {
	for _, c := range []struct {
		op    string
		depth int
	}{{"put", 0}, {"put", 1_000_000}, {"pop", 200_000}, {"pop", 1_000_000}} {
		b.Run(fmt.Sprintf("op=%s/depth=%d", c.op, c.depth), func(b *testing.B) {
			s, err := OpenStateDB(filepath.Join(b.TempDir(), "state.db"), StateOptions{MaxSessions: 10000})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Apply([]raftlog.Entry{cmdEntry(1, create("deep"))}); err != nil {
				b.Fatal(err)
			}
			msg := string(make([]byte, 256))
			next := uint64(2)
			seq := uint64(0)
			group := func(op string, n int) {
				batch := make([]raftlog.Entry, 0, 64)
				for done := 0; done < n; {
					batch = batch[:0]
					for ; done < n && len(batch) < 64; done++ {
						seq++
						cmd := put("deep", msg)
						if op == "pop" {
							cmd = pop("deep")
						}
						batch = append(batch, cmdEntry(next, withSession(cmd, fmt.Sprintf("client-%d", seq%64), seq)))
						next++
					}
					out, err := s.Apply(batch)
					if err != nil {
						b.Fatal(err)
					}
					for _, a := range out {
						if !a.Result.Success {
							b.Fatalf("%s at entry %d failed (queue empty?)", op, a.Index)
						}
					}
				}
				if err := s.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			for filled := 0; filled < c.depth; filled += 10000 {
				group("put", min(10000, c.depth-filled))
			}
			group(c.op, 300)
			w0 := writtenBytes(b)
			c0 := s.Commits()
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				group(c.op, 300)
			}
			b.StopTimer()
			b.ReportMetric(float64(writtenBytes(b)-w0)/float64(s.Commits()-c0), "wbytes/commit")
			// CPU, not wall time: a group's time is mostly its two
			// fdatasyncs, which swing with the disk and other jobs.
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(300*b.N), "cpu-ns/op")
		})
	}
}
