package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/config"
)

// diskPollInterval is how often the disk guard measures free space and the
// data directory's size.
const diskPollInterval = 250 * time.Millisecond

// diskGuard measures the data directory's filesystem and size in its own
// goroutine, off the node loop, and trips when free space falls below the
// guard (min_free_bytes) or the directory grows past max_data_bytes. The
// node loop and the status read its atomics.
type diskGuard struct {
	dir     string
	minFree int64         // config.Node.MinFreeBytes; MinFreeAuto resolved per poll
	maxData atomic.Uint64 // 0: unlimited (atomic: tests move it)
	log     zerolog.Logger

	free, total, used, minFreeBytes atomic.Uint64
	full                            atomic.Bool
	reason                          atomic.Pointer[string]
	failing                         atomic.Bool // the last poll failed (logged once)
	measured                        atomic.Bool // a poll has succeeded: free and the rest mean something
}

func newDiskGuard(cfg config.Node, log zerolog.Logger) *diskGuard {
	g := &diskGuard{dir: cfg.DataDir, minFree: cfg.MinFreeBytes, log: log}
	g.maxData.Store(cfg.MaxDataBytes)
	g.poll()
	return g
}

// run polls until stop is closed.
func (g *diskGuard) run(stop <-chan struct{}) {
	t := time.NewTicker(diskPollInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			g.poll()
		}
	}
}

// poll measures once and trips or clears the guard. A measurement that
// fails leaves the guard as it was.
func (g *diskGuard) poll() {
	free, total, err := statfs(g.dir)
	var used uint64
	if err == nil {
		used, err = dataDirBytes(g.dir)
	}
	if err != nil {
		if !g.failing.Swap(true) {
			g.log.Warn().Err(err).Str("dir", g.dir).Msg("cannot measure the data directory's disk; the disk-space guard keeps its last state")
		}
		return
	}
	g.failing.Store(false)
	defer g.measured.Store(true)
	minFree := uint64(max(g.minFree, 0))
	if g.minFree == config.MinFreeAuto {
		minFree = config.Node{MinFreeBytes: config.MinFreeAuto}.MinFree(total)
	}
	g.free.Store(free)
	g.total.Store(total)
	g.used.Store(used)
	g.minFreeBytes.Store(minFree)
	var reason string
	switch {
	case free < minFree:
		reason = fmt.Sprintf("%d bytes free on the data directory's filesystem, below min_free_bytes %d", free, minFree)
	case g.maxData.Load() > 0 && used > g.maxData.Load():
		reason = fmt.Sprintf("the data directory holds %d bytes, above max_data_bytes %d", used, g.maxData.Load())
	}
	was := g.full.Swap(reason != "")
	g.reason.Store(&reason)
	switch {
	case reason != "" && !was:
		g.log.Warn().Str("reason", reason).Msg("disk-space guard tripped: refusing puts and topic creation, not appending")
	case reason == "" && was:
		g.log.Info().Uint64("free_bytes", free).Uint64("data_bytes", used).Msg("disk-space guard cleared: space is back")
	}
}

// Full reports whether the guard is tripped.
func (g *diskGuard) Full() bool { return g.full.Load() }

// Reason says why the guard is tripped ("" when it is not).
func (g *diskGuard) Reason() string {
	if r := g.reason.Load(); r != nil {
		return *r
	}
	return ""
}

// fill copies the measurements into a status.
func (g *diskGuard) fill(ws *wire.Status) {
	ws.DiskFreeBytes = g.free.Load()
	ws.DiskTotalBytes = g.total.Load()
	ws.DataBytes = g.used.Load()
	ws.MinFreeBytes = g.minFreeBytes.Load()
	ws.MaxDataBytes = g.maxData.Load()
	ws.DiskFull = g.full.Load()
	if ws.DiskFull {
		ws.DiskFullReason = g.Reason()
	}
}

// dataDirBytes is the size of the files under dir.
func dataDirBytes(dir string) (uint64, error) {
	var n uint64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path != dir && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked (a snapshot rotated)
			}
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			n += uint64(info.Size())
		}
		return nil
	})
	return n, err
}
