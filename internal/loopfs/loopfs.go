// Package loopfs mounts a small ext4 filesystem on a loop device, for tests
// that fill a disk, and fills it with a ballast file. Tests only; mounting
// needs root, and a test skips with a message where it is impossible.
package loopfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Mount makes a filesystem of sizeBytes and mounts it on a new directory,
// unmounted when the test ends. It skips the test where that is impossible
// (not root, no mkfs.ext4, no loop device).
func Mount(t testing.TB, sizeBytes int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loopfs: mounting a small filesystem needs root; skipping")
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("loopfs: %s not found (%v); skipping", tool, err)
		}
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(sizeBytes); err != nil {
		f.Close()
		t.Fatal(err)
	}
	f.Close()
	// -m 0: no blocks reserved for root, so what the broker measures is
	// what it can write.
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		t.Skipf("loopfs: mkfs.ext4: %v: %s; skipping", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("loopfs: cannot mount a loop filesystem here (%v: %s); skipping", err, out)
	}
	t.Cleanup(func() {
		// A broker stopped by the test may hold a file a moment longer.
		var out []byte
		var err error
		for i := 0; i < 50; i++ {
			if out, err = exec.Command("umount", mnt).CombinedOutput(); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("loopfs: umount %s: %v: %s", mnt, err, out)
		_ = exec.Command("umount", "-l", mnt).Run()
	})
	return mnt
}

// Free returns the bytes available on the filesystem holding path.
func Free(t testing.TB, path string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// Fill allocates a ballast file in dir so that about leave bytes stay
// free, and returns its path (remove it to give the space back).
func Fill(t testing.TB, dir string, leave uint64) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("ballast-%d", time.Now().UnixNano()))
	free := Free(t, dir)
	if free <= leave {
		return path
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(free-leave)); err != nil {
		t.Fatalf("loopfs: allocate %d bytes of ballast: %v", free-leave, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return path
}
