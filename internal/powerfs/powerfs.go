// Package powerfs is a FUSE filesystem for power-loss tests. It mirrors a
// backing directory (a loopback) and models a disk with a volatile write
// cache: what a process writes is visible at once, but only what it made
// durable survives a power cut (FS.Cut).
//
// The durability rules are the ones POSIX promises, no more:
//   - fsync or fdatasync of a file makes its data and its size durable, not
//     its name;
//   - fsync of a directory makes its current entries (names → files and
//     subdirectories) durable;
//   - everything else (unsynced writes, truncates, creates, renames,
//     unlinks, mkdirs) is lost on a cut.
//
// The filesystem keeps a shadow copy of the durable state beside the
// backing directory: one file per inode with its synced content, and per
// directory the entries of its last fsync. A cut unmounts, rebuilds the
// backing directory from the shadow and mounts again, so the kernel page
// cache is gone too.
//
// Writes are not cached in the kernel (no writeback cache) and files are not
// opened for direct I/O, so mmap works (bbolt reads through it). A process
// must not mmap a file on a mount it serves itself: a garbage-collector stop
// during the page fault deadlocks it. Run the programs under test as child
// processes.
//
// Options: torn writes (the last unsynced write of each file is kept up to
// a seeded 512-byte boundary) and failing fsyncs (FailNextFsync: the next
// fsync of a file returns EIO and its dirty data is forgotten, as Linux
// does).
package powerfs

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Errors.
var (
	// ErrNoFUSE: mounting is impossible here (no /dev/fuse, or not root).
	ErrNoFUSE = errors.New("powerfs: FUSE is not available")
	// ErrUnmount: the filesystem could not be unmounted.
	ErrUnmount = errors.New("powerfs: unmount failed")
	// ErrRestore: the backing directory could not be rebuilt after a cut.
	ErrRestore = errors.New("powerfs: cannot restore the durable state")
)

// Available reports whether a mount can work here, and why not.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root", ErrNoFUSE)
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoFUSE, err)
	}
	f.Close()
	return nil
}

// Options shape a filesystem.
type Options struct {
	// Seed drives every random choice (torn-write boundaries).
	Seed int64
	// TornWrites keeps, on a cut, the last unsynced write of each file up to
	// a random 512-byte boundary instead of dropping it.
	TornWrites bool
	// Logf receives the seed and each cut's summary; nil is silent.
	Logf func(format string, args ...any)
}

// Stats count what the filesystem did.
type Stats struct {
	Cuts         int // power cuts
	FileSyncs    int // successful file fsyncs
	DirSyncs     int // directory fsyncs
	TornKept     int // torn writes partly kept on cuts
	FailedFsyncs int // fsyncs answered EIO
}

// FS is one mounted power-cut filesystem.
type FS struct {
	backing, mountpoint, shadow string
	opts                        Options
	rng                         *rand.Rand

	mu       sync.Mutex
	server   *fuse.Server
	connDir  string // /sys/fs/fuse/connections/N of the live mount
	nextID   uint64
	rootID   uint64
	files    map[uint64]*fileState // by backing inode number
	dirs     map[uint64]uint64     // backing inode number → directory id
	durable  map[uint64]map[string]entry
	blobs    map[uint64]bool // file ids with a durable content in shadow
	failNext map[string]int  // file base name → fsyncs to fail
	stats    Stats
}

// entry is one durable directory entry.
type entry struct {
	id  uint64
	dir bool
}

// span is a byte range [off, off+n) written since the last fsync.
type span struct{ off, n int64 }

// maxSpans bounds the dirty list of a file; past it the whole file is
// copied at its next fsync.
const maxSpans = 1024

// fileState is what powerfs knows of one file (one backing inode).
type fileState struct {
	id    uint64
	spans []span
	all   bool // the whole content is dirty
	// last is the last write since the last fsync, for torn writes.
	lastOff  int64
	lastData []byte
}

// Mount mounts a powerfs at mountpoint mirroring backing (both must be
// existing directories). What backing holds now is taken as durable. The
// shadow copy lives in backing + ".durable".
func Mount(backing, mountpoint string, opts Options) (*FS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	p := &FS{
		backing:    filepath.Clean(backing),
		mountpoint: filepath.Clean(mountpoint),
		shadow:     filepath.Clean(backing) + ".durable",
		opts:       opts,
		rng:        rand.New(rand.NewSource(opts.Seed)),
		failNext:   map[string]int{},
	}
	p.logf("powerfs: mount %s (seed %d, torn writes %v)", p.mountpoint, opts.Seed, opts.TornWrites)
	if err := p.mount(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *FS) logf(format string, args ...any) {
	if p.opts.Logf != nil {
		p.opts.Logf(format, args...)
	}
}

// Mountpoint is where the filesystem is mounted.
func (p *FS) Mountpoint() string { return p.mountpoint }

// Stats returns the counters so far.
func (p *FS) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// FailNextFsync makes the next fsync of a file named base (any directory)
// return EIO; its dirty data is then forgotten: it stays readable until
// the next cut but is never made durable, as on Linux after a failed
// writeback.
func (p *FS) FailNextFsync(base string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext[base]++
}

// mount scans backing as the durable state and mounts.
func (p *FS) mount() error {
	p.mu.Lock()
	err := p.scanLocked()
	p.mu.Unlock()
	if err != nil {
		return err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p.backing, &st); err != nil {
		return err
	}
	rootData := &fs.LoopbackRoot{Path: p.backing, Dev: st.Dev}
	root := &node{LoopbackNode: &fs.LoopbackNode{RootData: rootData}, p: p}
	rootData.RootNode = root
	sec := time.Second
	server, err := fs.Mount(p.mountpoint, root, &fs.Options{
		EntryTimeout: &sec,
		AttrTimeout:  &sec,
		MountOptions: fuse.MountOptions{
			FsName:      "powerfs",
			Name:        "powerfs",
			DirectMount: true,
		},
	})
	if err != nil {
		return fmt.Errorf("powerfs: mount %s: %w", p.mountpoint, err)
	}
	var mst syscall.Stat_t
	conn := ""
	if err := syscall.Stat(p.mountpoint, &mst); err == nil {
		conn = filepath.Join(fusectlDir, strconv.FormatUint(uint64(unix.Minor(mst.Dev)), 10))
	}
	p.mu.Lock()
	p.server, p.connDir = server, conn
	p.mu.Unlock()
	return nil
}

// scanLocked takes backing's current content as the durable state.
func (p *FS) scanLocked() error {
	p.files = map[uint64]*fileState{}
	p.dirs = map[uint64]uint64{}
	p.durable = map[uint64]map[string]entry{}
	p.blobs = map[uint64]bool{}
	if err := os.RemoveAll(p.shadow); err != nil {
		return err
	}
	if err := os.MkdirAll(p.shadow, 0o755); err != nil {
		return err
	}
	id, err := p.scanDirLocked(p.backing, 0)
	p.rootID = id
	return err
}

func (p *FS) scanDirLocked(dir string, depth int) (uint64, error) {
	if depth > 64 {
		return 0, fmt.Errorf("%w: %s nested too deep", ErrRestore, dir)
	}
	ino, err := inodeOf(dir)
	if err != nil {
		return 0, err
	}
	id := p.dirIDLocked(ino)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	m := map[string]entry{}
	for _, e := range ents {
		path := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir():
			cid, err := p.scanDirLocked(path, depth+1)
			if err != nil {
				return 0, err
			}
			m[e.Name()] = entry{id: cid, dir: true}
		case e.Type().IsRegular():
			cino, err := inodeOf(path)
			if err != nil {
				return 0, err
			}
			fst := p.fileLocked(cino)
			if err := copyFile(path, p.blobPath(fst.id)); err != nil {
				return 0, err
			}
			p.blobs[fst.id] = true
			m[e.Name()] = entry{id: fst.id}
		}
	}
	p.durable[id] = m
	return id, nil
}

func inodeOf(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

func (p *FS) dirIDLocked(ino uint64) uint64 {
	if id, ok := p.dirs[ino]; ok {
		return id
	}
	p.nextID++
	p.dirs[ino] = p.nextID
	return p.nextID
}

// fileLocked returns the state of backing inode ino, new if unknown.
func (p *FS) fileLocked(ino uint64) *fileState {
	if f, ok := p.files[ino]; ok {
		return f
	}
	return p.newFileLocked(ino)
}

// newFileLocked gives a just-created file (whose inode number the backing
// filesystem may have reused) a fresh identity.
func (p *FS) newFileLocked(ino uint64) *fileState {
	p.nextID++
	f := &fileState{id: p.nextID, all: true}
	p.files[ino] = f
	return f
}

func (p *FS) newDirLocked(ino uint64) {
	p.nextID++
	p.dirs[ino] = p.nextID
	p.durable[p.nextID] = map[string]entry{}
}

func (p *FS) blobPath(id uint64) string {
	return filepath.Join(p.shadow, strconv.FormatUint(id, 10))
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
