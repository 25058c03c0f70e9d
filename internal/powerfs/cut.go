package powerfs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// unmountTimeout bounds a clean unmount before the connection is aborted
// (a copy of the mount in another mount namespace, made by `ip netns exec`,
// keeps the connection alive after the unmount here).
const unmountTimeout = 3 * time.Second

// Cut loses power: it unmounts, throws away everything that was not
// durable, and mounts again with no cached state. Every process using the
// mount must be dead first (SIGKILL them).
func (p *FS) Cut() error {
	if err := p.unmount(); err != nil {
		return err
	}
	p.mu.Lock()
	torn, err := p.restoreLocked()
	p.stats.Cuts++
	cuts := p.stats.Cuts
	p.mu.Unlock()
	if err != nil {
		return err
	}
	p.logf("powerfs: power cut %d on %s (seed %d): %d torn writes kept in part", cuts, p.mountpoint, p.opts.Seed, torn)
	return p.mount()
}

// Close unmounts. The backing directory keeps the live (not only durable)
// content.
func (p *FS) Close() error { return p.unmount() }

// unmount unmounts cleanly, or aborts the FUSE connection when that hangs
// (for example when a copy of the mount lives on in another mount
// namespace) and detaches the mount point.
func (p *FS) unmount() error {
	p.mu.Lock()
	server, conn := p.server, p.connDir
	p.server = nil
	p.mu.Unlock()
	if server == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- server.Unmount() }()
	select {
	case err := <-done:
		if err == nil {
			server.Wait()
			return nil
		}
		p.logf("powerfs: unmount %s: %v; aborting the connection", p.mountpoint, err)
	case <-time.After(unmountTimeout):
		p.logf("powerfs: unmount %s hangs; aborting the connection", p.mountpoint)
	}
	if conn != "" {
		if err := abort(conn); err != nil {
			p.logf("powerfs: abort %s: %v", conn, err)
		}
	}
	if err := syscall.Unmount(p.mountpoint, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL {
		return fmt.Errorf("%w: %s: %w", ErrUnmount, p.mountpoint, err)
	}
	waited := make(chan struct{})
	go func() { server.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(unmountTimeout):
		return fmt.Errorf("%w: %s: the server does not stop", ErrUnmount, p.mountpoint)
	}
	return nil
}

// restoreLocked rebuilds the backing directory from the durable state and
// returns how many torn writes it kept in part.
func (p *FS) restoreLocked() (int, error) {
	ents, err := os.ReadDir(p.backing)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrRestore, err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(p.backing, e.Name())); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrRestore, err)
		}
	}
	byID := map[uint64]*fileState{}
	for _, f := range p.files {
		byID[f.id] = f
	}
	torn := 0
	if err := p.restoreDirLocked(p.backing, p.rootID, byID, &torn, 0); err != nil {
		return torn, fmt.Errorf("%w: %w", ErrRestore, err)
	}
	p.stats.TornKept += torn
	return torn, nil
}

func (p *FS) restoreDirLocked(dir string, id uint64, byID map[uint64]*fileState, torn *int, depth int) error {
	if depth > 64 {
		return fmt.Errorf("%s nested too deep", dir)
	}
	m := p.durable[id]
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names) // the seeded choices do not depend on map order
	for _, name := range names {
		e, path := m[name], filepath.Join(dir, name)
		if e.dir {
			if err := os.Mkdir(path, 0o755); err != nil {
				return err
			}
			if err := p.restoreDirLocked(path, e.id, byID, torn, depth+1); err != nil {
				return err
			}
			continue
		}
		if p.blobs[e.id] {
			if err := copyFile(p.blobPath(e.id), path); err != nil {
				return err
			}
		} else if err := os.WriteFile(path, nil, 0o644); err != nil {
			return err
		}
		if f := byID[e.id]; p.opts.TornWrites && f != nil && len(f.lastData) > 0 {
			keep := p.rng.Intn(len(f.lastData)/512+1) * 512
			if keep > 0 {
				if err := writeAt(path, f.lastData[:keep], f.lastOff); err != nil {
					return err
				}
				*torn++
			}
		}
	}
	return nil
}

func writeAt(path string, data []byte, off int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, off); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fusectlDir is where the kernel lists FUSE connections (fusectl).
const fusectlDir = "/sys/fs/fuse/connections"

// abort ends the FUSE connection conn (a directory under fusectlDir), so
// every request on it fails and the server's loops stop. fusectl is
// mounted first when it is not (systemd usually does it; a container
// often does not).
func abort(conn string) error {
	if _, err := os.Stat(conn); err != nil {
		if merr := syscall.Mount("fusectl", fusectlDir, "fusectl", 0, ""); merr != nil {
			return fmt.Errorf("mount fusectl: %v (after %v)", merr, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(conn, "abort"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write([]byte("1"))
	return err
}
