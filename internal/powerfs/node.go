package powerfs

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node that tells the FS what it writes and syncs.
type node struct {
	*fs.LoopbackNode
	p *FS
}

var (
	_ fs.NodeWrapChilder     = (*node)(nil)
	_ fs.NodeWriter          = (*node)(nil)
	_ fs.NodeWritever        = (*node)(nil)
	_ fs.NodeFsyncer         = (*node)(nil)
	_ fs.NodeSetattrer       = (*node)(nil)
	_ fs.NodeAllocater       = (*node)(nil)
	_ fs.NodeCreater         = (*node)(nil)
	_ fs.NodeMkdirer         = (*node)(nil)
	_ fs.NodeOpendirHandler  = (*node)(nil)
	_ fs.NodeCopyFileRanger  = (*node)(nil)
	_ fs.NodeOpener          = (*node)(nil)
	_ fs.FileFsyncdirer      = (*dirHandle)(nil)
	_ fs.FilePassthroughFder = (*file)(nil)
)

// WrapChild makes every node of the tree a powerfs node.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if ln, ok := ops.(*fs.LoopbackNode); ok {
		return &node{LoopbackNode: ln, p: n.p}
	}
	return ops
}

// backingPath is the node's path in the backing directory.
func (n *node) backingPath() string {
	return filepath.Join(n.p.backing, n.Path(n.Root()))
}

// state returns the file state of this node's backing inode.
func (n *node) state() *fileState {
	ino, err := inodeOf(n.backingPath())
	if err != nil {
		return nil
	}
	n.p.mu.Lock()
	defer n.p.mu.Unlock()
	return n.p.fileLocked(ino)
}

// Create creates a file; a file that did not exist gets a fresh identity.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	path := filepath.Join(n.backingPath(), name)
	_, statErr := inodeOf(path)
	ch, fh, fl, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	fh = noPassthrough(fh)
	if errno == 0 && statErr != nil {
		if ino, err := inodeOf(path); err == nil {
			n.p.mu.Lock()
			n.p.newFileLocked(ino)
			n.p.mu.Unlock()
		}
	}
	return ch, fh, fl, errno
}

// Open opens a file with a handle that keeps its I/O in powerfs.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, errno := n.LoopbackNode.Open(ctx, flags)
	if errno == 0 && flags&syscall.O_TRUNC != 0 {
		// In case the kernel passes O_TRUNC instead of a setattr.
		n.p.noteResize(n.state())
	}
	return noPassthrough(fh), fl, errno
}

// file is a loopback file handle that refuses kernel passthrough: with it
// the kernel would write to the backing file directly, unseen.
type file struct{ *fs.LoopbackFile }

// PassthroughFd says no.
func (f *file) PassthroughFd() (int, bool) { return -1, false }

func noPassthrough(fh fs.FileHandle) fs.FileHandle {
	if lf, ok := fh.(*fs.LoopbackFile); ok {
		return &file{lf}
	}
	return fh
}

// Mkdir creates a directory with no durable entries.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if errno == 0 {
		if ino, err := inodeOf(filepath.Join(n.backingPath(), name)); err == nil {
			n.p.mu.Lock()
			n.p.newDirLocked(ino)
			n.p.mu.Unlock()
		}
	}
	return ch, errno
}

// Write records the written range as dirty.
func (n *node) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	w, ok := f.(fs.FileWriter)
	if !ok {
		return 0, syscall.EBADF
	}
	written, errno := w.Write(ctx, data, off)
	if written > 0 {
		n.p.noteWrite(n.state(), off, data[:written])
	}
	return written, errno
}

// Writev is Write for data in pieces.
func (n *node) Writev(ctx context.Context, f fs.FileHandle, iov [][]byte, off int64) (uint32, syscall.Errno) {
	var all []byte
	for _, b := range iov {
		all = append(all, b...)
	}
	return n.Write(ctx, f, all, off)
}

// Setattr records a size change as dirty.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok {
		n.p.noteResize(n.state())
	}
	return n.LoopbackNode.Setattr(ctx, f, in, out)
}

// Allocate records a possible size change as dirty.
func (n *node) Allocate(ctx context.Context, f fs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	a, ok := f.(fs.FileAllocater)
	if !ok {
		return syscall.ENOTSUP
	}
	n.p.noteResize(n.state())
	return a.Allocate(ctx, off, size, mode)
}

// CopyFileRange is refused so the kernel falls back to reads and writes,
// which powerfs sees.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// Fsync makes a file's data and size durable, or a directory's entries.
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if n.IsDir() {
		return n.p.syncDir(n.backingPath())
	}
	return n.p.syncFile(n.backingPath(), n.state())
}

// OpendirHandle wraps the loopback directory stream so that fsync of a
// directory handle reaches powerfs.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ds, errno := fs.NewLoopbackDirStream(n.backingPath())
	if errno != 0 {
		return nil, 0, errno
	}
	ld, ok := ds.(loopDir)
	if !ok {
		ds.Close()
		return nil, 0, syscall.ENOTSUP
	}
	return &dirHandle{loopDir: ld, n: n}, 0, 0
}

// loopDir is what the loopback directory stream offers.
type loopDir interface {
	fs.DirStream
	fs.FileReaddirenter
	fs.FileReleasedirer
	fs.FileSeekdirer
}

type dirHandle struct {
	loopDir
	n *node
}

func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return d.n.p.syncDir(d.n.backingPath())
}

func (p *FS) noteWrite(f *fileState, off int64, data []byte) {
	if f == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !f.all {
		if k := len(f.spans); k > 0 && f.spans[k-1].off+f.spans[k-1].n == off {
			f.spans[k-1].n += int64(len(data))
		} else if k >= maxSpans {
			f.all, f.spans = true, nil
		} else {
			f.spans = append(f.spans, span{off, int64(len(data))})
		}
	}
	if p.opts.TornWrites {
		f.lastOff = off
		f.lastData = append(f.lastData[:0], data...)
	}
}

func (p *FS) noteResize(f *fileState) {
	if f == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// A shrink then a grow leaves zeros that no write span covers: copy the
	// whole file at the next fsync. (Size changes are rare: bbolt grows its
	// file in large steps.) A torn write past a shrink would be wrong too.
	f.all, f.spans, f.lastData = true, nil, nil
}

// syncFile copies the dirty ranges of the file at path into its durable
// copy and sets the durable size.
func (p *FS) syncFile(path string, f *fileState) syscall.Errno {
	if f == nil {
		return 0 // unlinked meanwhile: nothing of it can be durable by name
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := p.failNext[filepath.Base(path)]; k > 0 {
		p.failNext[filepath.Base(path)] = k - 1
		p.stats.FailedFsyncs++
		// Forgotten: never written, though still readable until a cut.
		f.spans, f.lastData = nil, nil
		if !p.blobs[f.id] {
			// Nothing durable yet: keep the file's durable content empty.
			if err := os.WriteFile(p.blobPath(f.id), nil, 0o644); err != nil {
				return syscall.EIO
			}
			p.blobs[f.id] = true
		}
		f.all = false
		p.logf("powerfs: fsync of %s fails with EIO (its unsynced writes are forgotten)", path)
		return syscall.EIO
	}
	src, err := os.Open(path)
	if err != nil {
		return fs.ToErrno(err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return fs.ToErrno(err)
	}
	size := st.Size()
	if f.all || !p.blobs[f.id] {
		if err := copyFile(path, p.blobPath(f.id)); err != nil {
			return syscall.EIO
		}
	} else {
		dst, err := os.OpenFile(p.blobPath(f.id), os.O_WRONLY, 0)
		if err != nil {
			return syscall.EIO
		}
		buf := make([]byte, 64<<10)
		for _, s := range f.spans {
			for off, end := s.off, min(s.off+s.n, size); off < end; {
				k := min(int64(len(buf)), end-off)
				r, err := src.ReadAt(buf[:k], off)
				if r > 0 {
					if _, werr := dst.WriteAt(buf[:r], off); werr != nil {
						dst.Close()
						return syscall.EIO
					}
				}
				if err != nil || r == 0 {
					break
				}
				off += int64(r)
			}
		}
		if err := dst.Truncate(size); err != nil {
			dst.Close()
			return syscall.EIO
		}
		if err := dst.Close(); err != nil {
			return syscall.EIO
		}
	}
	p.blobs[f.id] = true
	f.all, f.spans, f.lastData = false, nil, nil
	p.stats.FileSyncs++
	return 0
}

// syncDir makes the current entries of the directory at path durable.
func (p *FS) syncDir(path string) syscall.Errno {
	ents, err := os.ReadDir(path)
	if err != nil {
		return fs.ToErrno(err)
	}
	ino, err := inodeOf(path)
	if err != nil {
		return fs.ToErrno(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]entry{}
	for _, e := range ents {
		cino, err := inodeOf(filepath.Join(path, e.Name()))
		if err != nil {
			continue // removed meanwhile
		}
		switch {
		case e.IsDir():
			m[e.Name()] = entry{id: p.dirIDLocked(cino), dir: true}
		case e.Type().IsRegular():
			m[e.Name()] = entry{id: p.fileLocked(cino).id}
		}
	}
	p.durable[p.dirIDLocked(ino)] = m
	p.stats.DirSyncs++
	return 0
}
