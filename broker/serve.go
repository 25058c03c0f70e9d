package broker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/storage"
)

// spacePollInterval is how often a node stopped by a full disk checks
// whether space came back.
const spacePollInterval = 500 * time.Millisecond

// minFreeToReopen is the free space a node stopped by ENOSPC waits for
// when the guard is off (min_free_bytes 0).
const minFreeToReopen = 16 * config.MiB

// Serve runs a node until ctx is done: New, then Run. A node that stopped
// because a write found the disk full (ENOSPC) does not go on with what it
// had in memory: its stores refuse every write after a failed one
// (storage.ErrWriteFailed, decision 9) and Run returns. Serve then drops the
// page cache of its files, waits until the filesystem has space again
// (above min_free_bytes), and opens the node afresh from its files, in the
// same process, as a restart would: bbolt's meta page is written last, so
// a transaction that failed left the previous one in force, and the log
// re-applies what state.db had not made durable (decision 19).
func Serve(ctx context.Context, cfg config.Node, log zerolog.Logger) error {
	for {
		b, err := New(cfg, log)
		if err == nil {
			err = b.Run(ctx)
		}
		if err == nil || ctx.Err() != nil || !errors.Is(err, syscall.ENOSPC) {
			return err
		}
		log.Error().Err(err).Str("data_dir", cfg.DataDir).
			Msg("the disk is full: this node stopped without trusting the failed write; it reopens its files from disk once space is back")
		dropPageCache(cfg.DataDir, log)
		if !waitForSpace(ctx, cfg, log) {
			return nil
		}
		log.Info().Str("data_dir", cfg.DataDir).Msg("space is back: reopening the node from its files")
	}
}

// waitForSpace polls the data directory's filesystem until its free space
// is above the guard, or ctx is done (false).
func waitForSpace(ctx context.Context, cfg config.Node, log zerolog.Logger) bool {
	t := time.NewTicker(spacePollInterval)
	defer t.Stop()
	for {
		free, total, err := statfs(cfg.DataDir)
		if err != nil {
			log.Warn().Err(err).Msg("cannot measure free space; waiting")
		} else if need := max(cfg.MinFree(total), minFreeToReopen); free >= need {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// dropPageCache asks the kernel to forget the cached pages of raft.db and
// state.db, so the reopened files are read from the disk: after a failed
// writeback Linux may mark pages clean that never reached the disk, and a
// reopen through the page cache would see them (fsyncgate).
func dropPageCache(dataDir string, log zerolog.Logger) {
	for _, name := range []string{storage.RaftDBFile, storage.StateDBFile} {
		path := filepath.Join(dataDir, name)
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		if err := fadviseDontNeed(f); err != nil {
			log.Warn().Err(err).Str("file", path).Msg("cannot drop the file's cached pages")
		}
		f.Close()
	}
}
