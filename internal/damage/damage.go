// Package damage corrupts files on purpose, for tests that check that
// raftmq detects damage and never serves from it.
package damage

import (
	"bytes"
	"os"
	"testing"
)

// FlipAll flips one bit (mask) in the middle of every copy of marker in the
// file and returns how many copies it changed. bbolt may keep an older copy
// of a page in free space, so every copy is damaged, not just the first.
func FlipAll(t testing.TB, path string, marker []byte, mask byte) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for off := 0; ; {
		i := bytes.Index(b[off:], marker)
		if i < 0 {
			break
		}
		b[off+i+len(marker)/2] ^= mask
		off += i + len(marker)
		n++
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

// TruncateUsedHalf cuts a file to half of its used length. bbolt grows files
// ahead of use, so "used" ends at the last non-zero byte.
func TruncateUsedHalf(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(len(bytes.TrimRight(b, "\x00"))/2)); err != nil {
		t.Fatal(err)
	}
}
