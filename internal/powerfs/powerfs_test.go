package powerfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// mountT mounts a powerfs over a fresh backing directory, or skips the test
// where FUSE cannot work.
func mountT(t *testing.T, opts Options) *FS {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("power-cut filesystem unavailable: %v (needs /dev/fuse and root)", err)
	}
	dir := t.TempDir()
	backing, mnt := filepath.Join(dir, "backing"), filepath.Join(dir, "mnt")
	for _, d := range []string{backing, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts.Logf = t.Logf
	p, err := Mount(backing, mnt, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func writeFile(t *testing.T, path string, data []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func cut(t *testing.T, p *FS) {
	t.Helper()
	if err := p.Cut(); err != nil {
		t.Fatal(err)
	}
}

func wantContent(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s holds %q, want %q", path, got, want)
	}
}

func wantMissing(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s survived the cut (stat: %v)", path, err)
	}
}

func TestSyncedDataAndNameSurvive(t *testing.T) {
	p := mountT(t, Options{Seed: 1})
	a := filepath.Join(p.Mountpoint(), "a")
	writeFile(t, a, []byte("durable"), true)
	syncDir(t, p.Mountpoint())
	cut(t, p)
	wantContent(t, a, []byte("durable"))
}

func TestUnsyncedWriteIsLost(t *testing.T) {
	p := mountT(t, Options{Seed: 2})
	a := filepath.Join(p.Mountpoint(), "a")
	writeFile(t, a, []byte("first"), true)
	syncDir(t, p.Mountpoint())
	f, err := os.OpenFile(a, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XX"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(" and more"), 5); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantContent(t, a, []byte("fXXst and more")) // visible before the cut
	cut(t, p)
	wantContent(t, a, []byte("first"))
}

func TestPartialSyncKeepsOnlySyncedRanges(t *testing.T) {
	p := mountT(t, Options{Seed: 3})
	a := filepath.Join(p.Mountpoint(), "a")
	writeFile(t, a, bytes.Repeat([]byte("a"), 8192), true)
	syncDir(t, p.Mountpoint())
	f, err := os.OpenFile(a, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("bb"), 4096); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("cc"), 10); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(100000); err != nil { // grows, unsynced
		t.Fatal(err)
	}
	f.Close()
	cut(t, p)
	want := bytes.Repeat([]byte("a"), 8192)
	copy(want[4096:], "bb")
	wantContent(t, a, want)
}

func TestUnsyncedNameIsLost(t *testing.T) {
	p := mountT(t, Options{Seed: 4})
	a := filepath.Join(p.Mountpoint(), "a")
	writeFile(t, a, []byte("data synced, name not"), true)
	cut(t, p)
	wantMissing(t, a)
}

func TestUnsyncedRenameIsLost(t *testing.T) {
	p := mountT(t, Options{Seed: 5})
	a, b := filepath.Join(p.Mountpoint(), "a"), filepath.Join(p.Mountpoint(), "b")
	writeFile(t, a, []byte("one"), true)
	syncDir(t, p.Mountpoint())
	if err := os.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	cut(t, p)
	wantContent(t, a, []byte("one"))
	wantMissing(t, b)

	// The same rename with its directory fsynced survives.
	if err := os.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	syncDir(t, p.Mountpoint())
	cut(t, p)
	wantContent(t, b, []byte("one"))
	wantMissing(t, a)
}

func TestReplacingRenameKeepsTheOldFileUntilSynced(t *testing.T) {
	p := mountT(t, Options{Seed: 6})
	dst, tmp := filepath.Join(p.Mountpoint(), "db"), filepath.Join(p.Mountpoint(), "db.tmp")
	writeFile(t, dst, []byte("old"), true)
	syncDir(t, p.Mountpoint())
	writeFile(t, tmp, []byte("new"), true)
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
	cut(t, p)
	wantContent(t, dst, []byte("old"))
	wantMissing(t, tmp)
}

func TestUnsyncedMkdirAndUnlinkAreLost(t *testing.T) {
	p := mountT(t, Options{Seed: 7})
	a, sub := filepath.Join(p.Mountpoint(), "a"), filepath.Join(p.Mountpoint(), "sub")
	writeFile(t, a, []byte("kept"), true)
	syncDir(t, p.Mountpoint())
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sub, "x"), []byte("x"), true)
	syncDir(t, sub) // the entry in sub is durable, sub itself is not
	cut(t, p)
	wantContent(t, a, []byte("kept"))
	wantMissing(t, sub)

	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sub, "x"), []byte("x"), true)
	syncDir(t, sub)
	syncDir(t, p.Mountpoint())
	cut(t, p)
	wantContent(t, filepath.Join(sub, "x"), []byte("x"))
}

func TestTornWriteKeepsA512BytePrefix(t *testing.T) {
	p := mountT(t, Options{Seed: 8, TornWrites: true})
	a := filepath.Join(p.Mountpoint(), "a")
	old := bytes.Repeat([]byte("o"), 8192)
	writeFile(t, a, old, true)
	syncDir(t, p.Mountpoint())
	kept := map[int]bool{}
	for round := 0; round < 8; round++ {
		f, err := os.OpenFile(a, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(bytes.Repeat([]byte("n"), 4096), 1024); err != nil {
			t.Fatal(err)
		}
		f.Close()
		cut(t, p)
		got, err := os.ReadFile(a)
		if err != nil {
			t.Fatal(err)
		}
		// The kernel may split the write; the last piece is what tears.
		// What is kept is one run of new bytes, a 512-byte multiple long,
		// inside the written range.
		n, at := bytes.Count(got, []byte("n")), bytes.IndexByte(got, 'n')
		if len(got) != len(old) || n%512 != 0 ||
			(n > 0 && (at < 1024 || at+n > 1024+4096 || !bytes.Equal(got[at:at+n], bytes.Repeat([]byte("n"), n)))) {
			t.Fatalf("round %d: torn write left %d new bytes at %d in %d (want one 512-byte multiple run inside [1024, 5120))", round, n, at, len(got))
		}
		kept[n] = true
		// Back to the old content, synced.
		writeFile(t, a, old, true)
	}
	if len(kept) < 2 {
		t.Fatalf("seed 8: every cut kept the same prefix %v; the boundary is not random", kept)
	}
}

func TestFailedFsyncForgetsTheData(t *testing.T) {
	p := mountT(t, Options{Seed: 9})
	a := filepath.Join(p.Mountpoint(), "a")
	writeFile(t, a, []byte("11111"), true)
	syncDir(t, p.Mountpoint())
	p.FailNextFsync("a")
	f, err := os.OpenFile(a, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("22"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync: %v, want EIO", err)
	}
	if _, err := f.WriteAt([]byte("3"), 4); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil { // succeeds, but the forgotten write stays lost
		t.Fatalf("second fsync: %v", err)
	}
	wantContent(t, a, []byte("22113"))
	f.Close()
	cut(t, p)
	wantContent(t, a, []byte("11113"))
	if s := p.Stats(); s.FailedFsyncs != 1 || s.Cuts != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestTruncateThenGrowSyncsZeros: after O_TRUNC, the synced file holds
// zeros where nothing was written again, not the old bytes.
func TestTruncateThenGrowSyncsZeros(t *testing.T) {
	p := mountT(t, Options{Seed: 10})
	a := filepath.Join(p.Mountpoint(), "a")
	writeFile(t, a, bytes.Repeat([]byte("a"), 8192), true)
	syncDir(t, p.Mountpoint())
	f, err := os.OpenFile(a, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 4096); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cut(t, p)
	wantContent(t, a, append(make([]byte, 4096), 'x'))
}
