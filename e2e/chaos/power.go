package chaos

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/raftmq/raftmq/e2e"
	"github.com/raftmq/raftmq/internal/powerfs"
)

// mountDisks puts each node's data directory on its own power-cut
// filesystem (internal/powerfs), for the power-cut family. The brokers run
// as child processes, never in this process: a process cannot mmap files
// on a FUSE mount it serves itself.
func mountDisks(c *e2e.Cluster, seed uint64, logf func(string, ...any)) ([]*powerfs.FS, error) {
	var disks []*powerfs.FS
	for i := range c.Addrs {
		backing := filepath.Join(c.Dir, fmt.Sprintf("node%d.disk", i))
		for _, d := range []string{backing, c.DataDir(i)} {
			if err := os.MkdirAll(d, 0o750); err != nil {
				unmountDisks(disks)
				return nil, fmt.Errorf("chaos: %w", err)
			}
		}
		fs, err := powerfs.Mount(backing, c.DataDir(i), powerfs.Options{Seed: int64(seed) + int64(i), Logf: logf})
		if err != nil {
			unmountDisks(disks)
			return nil, fmt.Errorf("chaos: %w", err)
		}
		disks = append(disks, fs)
	}
	return disks, nil
}

// detachDisks unmounts every disk (all brokers are stopped) and puts each
// backing directory, which holds the live content, in place of its data
// directory, so the checks read plain files.
func detachDisks(c *e2e.Cluster, disks []*powerfs.FS) error {
	for i, d := range disks {
		if err := d.Close(); err != nil {
			return err
		}
		if err := os.Remove(c.DataDir(i)); err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
		if err := os.Rename(filepath.Join(c.Dir, fmt.Sprintf("node%d.disk", i)), c.DataDir(i)); err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
	}
	return nil
}

func unmountDisks(disks []*powerfs.FS) {
	for _, d := range disks {
		_ = d.Close()
	}
}

// powerCut loses power on targets at once: SIGKILL, then every disk drops
// what was not durable. The nodes stay down until restart.
func (n *nemesis) powerCut(targets []int) error {
	var first error
	for _, i := range targets {
		if err := n.kill(i); err != nil && first == nil {
			first = err
		}
	}
	for _, i := range targets {
		if err := n.disks[i].Cut(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
