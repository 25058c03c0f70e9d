package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestMkdirAllCreatesAndSyncs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "c")
	if err := MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("stat %s: %v", dir, err)
	}
	if err := MkdirAll(dir, 0o750); err != nil { // exists: fine
		t.Fatal(err)
	}
}

func TestMkdirAllRefusesAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(f, 0o750); !errors.Is(err, ErrSync) {
		t.Fatalf("MkdirAll over a file: %v, want ErrSync", err)
	}
}

func TestSyncDirMissing(t *testing.T) {
	if err := SyncDir(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, ErrSync) {
		t.Fatalf("SyncDir of a missing directory: %v, want ErrSync", err)
	}
}
