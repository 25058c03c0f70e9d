package bench

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// FsyncBlockBytes is the size of each write of the fsync probe.
const FsyncBlockBytes = 4096

// Fsync is the raw fsync rate of a directory's filesystem.
type Fsync struct {
	Dir     string        `json:"dir"`
	Count   int           `json:"count"`
	Elapsed time.Duration `json:"elapsed_ns"`
	PerSec  float64       `json:"fsyncs_per_sec"`
	Mean    time.Duration `json:"mean_ns"`
}

// MeasureFsync writes count blocks of 4 KiB into a preallocated temporary
// file in dir, syncing (fdatasync on Linux, like bbolt) after each, and
// reports the rate. The file is removed afterwards.
func MeasureFsync(dir string, count int) (Fsync, error) {
	if count <= 0 {
		return Fsync{}, fmt.Errorf("bench: fsync count %d must be positive", count)
	}
	f, err := os.CreateTemp(dir, ".raftmq-fsync-probe-*")
	if err != nil {
		return Fsync{}, fmt.Errorf("bench: fsync probe in %s: %w", dir, err)
	}
	res, err := probe(f, count)
	res.Dir = dir
	return res, errors.Join(err, f.Close(), os.Remove(f.Name()))
}

func probe(f *os.File, count int) (Fsync, error) {
	// Preallocate so each sync flushes data, not a growing file's size.
	if err := f.Truncate(int64(count) * FsyncBlockBytes); err != nil {
		return Fsync{}, fmt.Errorf("bench: fsync probe: %w", err)
	}
	if err := f.Sync(); err != nil {
		return Fsync{}, fmt.Errorf("bench: fsync probe: %w", err)
	}
	block := make([]byte, FsyncBlockBytes)
	for i := range block {
		block[i] = byte(i)
	}
	start := time.Now()
	for i := range count {
		if _, err := f.WriteAt(block, int64(i)*FsyncBlockBytes); err != nil {
			return Fsync{}, fmt.Errorf("bench: fsync probe write: %w", err)
		}
		if err := datasync(f); err != nil {
			return Fsync{}, fmt.Errorf("bench: fsync probe sync: %w", err)
		}
	}
	return fsyncResult(count, time.Since(start)), nil
}

// fsyncResult is the probe's math.
func fsyncResult(count int, elapsed time.Duration) Fsync {
	r := Fsync{Count: count, Elapsed: elapsed}
	if elapsed > 0 {
		r.PerSec = float64(count) / elapsed.Seconds()
		r.Mean = elapsed / time.Duration(count)
	}
	return r
}
