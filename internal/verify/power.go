package verify

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/raftmq/raftmq/internal/powerfs"
	"github.com/raftmq/raftmq/internal/proccluster"
)

// mountDisks puts each node's data directory on its own power-cut
// filesystem (internal/powerfs), for the power-cut family. The brokers run
// as child processes, never in this process: a process cannot mmap files
// on a FUSE mount it serves itself.
func mountDisks(c *proccluster.Cluster, seed uint64, logf func(string, ...any)) ([]*powerfs.FS, error) {
	var disks []*powerfs.FS
	for i := range c.Addrs {
		backing := backingDir(c, i)
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

// backingDir is the directory that holds node i's files under its disk.
func backingDir(c *proccluster.Cluster, i int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("node%d.disk", i))
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
