package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCreateRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		bodyBytes int
	}{
		{"empty body", 0},
		{"one byte", 1},
		{"one page", 4096},
		{"odd size over a buffer", writeBufferBytes + 13},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, filepath.Join(t.TempDir(), "snapshots"), 2)
			body := randomBody(t, uint64(i+1), tt.bodyBytes)
			m := mustCreate(t, s, 10000, 3, body)

			want := Meta{ClusterID: testCluster, Index: 10000, Term: 3, Voters: []uint64{1, 2, 3},
				Size: int64(len(body)), CRC: crc32.Checksum(body, castagnoli)}
			if !m.Same(want) {
				t.Fatalf("Create() = %+v, want %+v", m, want)
			}
			if m.Name() != "0000000000000003-0000000000002710.snap" {
				t.Errorf("Name() = %q", m.Name())
			}
			if got := readAll(t, s, m); !bytes.Equal(got, body) {
				t.Fatalf("OpenSnapshot read %d bytes, differing from the %d written", len(got), len(body))
			}
			if err := s.Verify(m.Name()); err != nil {
				t.Errorf("Verify() = %v", err)
			}
			if err := s.Verify(s.Path(m)); err != nil {
				t.Errorf("Verify(full path) = %v", err)
			}
			if got, err := s.Latest(); err != nil || !got.Same(m) {
				t.Errorf("Latest() = %+v, %v; want %+v", got, err, m)
			}
			if got, err := ReadMeta(s.Path(m)); err != nil || !got.Same(m) {
				t.Errorf("ReadMeta() = %+v, %v", got, err)
			}
			if r := m.Raft(); r.Index != 10000 || r.Term != 3 || !slices.Equal(r.Conf.Voters, []uint64{1, 2, 3}) {
				t.Errorf("Raft() = %+v", r)
			}
			dst := filepath.Join(t.TempDir(), "state.db")
			if err := os.WriteFile(dst, []byte("old state"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := s.ExtractBody(m, dst); err != nil {
				t.Fatalf("ExtractBody() = %v", err)
			}
			if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, body) {
				t.Fatalf("extracted %d bytes (err %v), want the %d-byte body", len(got), err, len(body))
			}
			assertNoTempFiles(t, s.Dir(), filepath.Dir(dst))
		})
	}
}

func TestKeepNewest(t *testing.T) {
	tests := []struct {
		keep, creates int
	}{
		{1, 1}, {1, 4}, {2, 5}, {3, 3}, {3, 7},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("keep %d of %d", tt.keep, tt.creates), func(t *testing.T) {
			s := openStore(t, t.TempDir(), tt.keep)
			var created []Meta
			for i := range tt.creates {
				// Term changes every other snapshot so names sort on both parts.
				created = append(created, mustCreate(t, s, uint64(100*(i+1)), uint64(1+i/2), []byte{byte(i)}))
			}
			got, err := s.List()
			if err != nil {
				t.Fatalf("List() = %v", err)
			}
			slices.Reverse(created)
			want := created[:min(tt.keep, tt.creates)]
			if len(got) != len(want) {
				t.Fatalf("List() has %d snapshots, want %d", len(got), len(want))
			}
			for i := range want {
				if !got[i].Same(want[i]) {
					t.Errorf("List()[%d] = %s, want %s (newest first)", i, got[i].Name(), want[i].Name())
				}
			}
			ents, _ := os.ReadDir(s.Dir())
			if len(ents) != len(want) {
				t.Errorf("%d files in %s, want %d", len(ents), s.Dir(), len(want))
			}
		})
	}
}

// corruptions damage the file of a freshly created snapshot.
var corruptions = []struct {
	name    string
	damage  func(t *testing.T, path string, hl int64)
	is      []error
	msg     string
	listErr bool // the header is damaged, so List reports it
}{
	{
		name:   "flipped byte in body",
		damage: func(t *testing.T, path string, hl int64) { flipByte(t, path, hl+777) },
		is:     []error{ErrChecksum}, msg: "body CRC32C",
	},
	{
		name:   "flipped last byte of body",
		damage: func(t *testing.T, path string, hl int64) { flipByte(t, path, fileSize(t, path)-1) },
		is:     []error{ErrChecksum}, msg: "body CRC32C",
	},
	{
		name:   "flipped byte in header index",
		damage: func(t *testing.T, path string, hl int64) { flipByte(t, path, 20) },
		is:     []error{ErrBadHeader, ErrChecksum}, msg: "header CRC32C", listErr: true,
	},
	{
		name:   "flipped byte in header checksum",
		damage: func(t *testing.T, path string, hl int64) { flipByte(t, path, hl-1) },
		is:     []error{ErrBadHeader, ErrChecksum}, msg: "header CRC32C", listErr: true,
	},
	{
		name:   "flipped byte in magic",
		damage: func(t *testing.T, path string, hl int64) { flipByte(t, path, 0) },
		is:     []error{ErrBadHeader}, msg: "not a raftmq snapshot", listErr: true,
	},
	{
		name:   "body truncated",
		damage: func(t *testing.T, path string, hl int64) { truncate(t, path, fileSize(t, path)-1) },
		is:     []error{ErrTruncated}, msg: "header says",
	},
	{
		name:   "truncated inside the header",
		damage: func(t *testing.T, path string, hl int64) { truncate(t, path, hl-10) },
		is:     []error{ErrBadHeader, ErrTruncated}, msg: "only", listErr: true,
	},
	{
		name:   "truncated to nothing",
		damage: func(t *testing.T, path string, hl int64) { truncate(t, path, 0) },
		is:     []error{ErrBadHeader, ErrTruncated}, msg: "0 bytes", listErr: true,
	},
	{
		name: "bytes appended",
		damage: func(t *testing.T, path string, hl int64) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte("junk")); err != nil {
				t.Fatal(err)
			}
		},
		is: []error{ErrBadHeader}, msg: "4 bytes after the body",
	},
}

func TestCorruptionDetected(t *testing.T) {
	for i, tt := range corruptions {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), 2)
			body := randomBody(t, uint64(100+i), 64*1024)
			m := mustCreate(t, s, 500, 2, body)
			tt.damage(t, s.Path(m), int64(m.headerLen()))

			err := s.Verify(m.Name())
			checkErr(t, "Verify", err, tt.is, tt.msg, s.Path(m))

			// OpenSnapshot either refuses at once or fails at the end of the
			// body; it never ends a damaged body with io.EOF.
			_, rc, err := s.OpenSnapshot(m)
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			checkErr(t, "OpenSnapshot+read", err, tt.is, tt.msg, s.Path(m))

			dst := filepath.Join(t.TempDir(), "state.db")
			err = s.ExtractBody(m, dst)
			checkErr(t, "ExtractBody", err, tt.is, tt.msg, s.Path(m))
			if _, statErr := os.Stat(dst); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("ExtractBody of a damaged snapshot created %s", dst)
			}
			assertNoTempFiles(t, filepath.Dir(dst))

			metas, err := s.List()
			if tt.listErr {
				checkErr(t, "List", err, tt.is, tt.msg, s.Path(m))
				if len(metas) != 0 {
					t.Errorf("List() returned %d snapshots with a damaged header", len(metas))
				}
			} else if err != nil || len(metas) != 1 {
				t.Errorf("List() = %d metas, %v; want the snapshot (body damage is found by Verify)", len(metas), err)
			}
		})
	}
}

func TestWrongClusterRejected(t *testing.T) {
	dir := t.TempDir()
	m := mustCreate(t, openStore(t, dir, 2), 500, 2, []byte("state"))
	other, err := Open(dir, "another-cluster", 2)
	if err != nil {
		t.Fatal(err)
	}
	wantMsg := `belongs to cluster "` + testCluster + `", this node is in cluster "another-cluster"`
	checkErr(t, "Verify", other.Verify(m.Name()), []error{ErrClusterMismatch}, wantMsg, other.Path(m))
	_, _, err = other.OpenSnapshot(m)
	checkErr(t, "OpenSnapshot", err, []error{ErrClusterMismatch}, wantMsg, other.Path(m))
	_, err = other.ReadChunk(m, 0, 4096)
	checkErr(t, "ReadChunk", err, []error{ErrClusterMismatch}, wantMsg, other.Path(m))
	_, err = other.Latest()
	checkErr(t, "Latest", err, []error{ErrNotFound, ErrClusterMismatch}, wantMsg, other.Path(m))
	_, err = other.Create(Meta{ClusterID: testCluster, Index: 600, Term: 2}, bodyWriter(nil))
	checkErr(t, "Create", err, []error{ErrClusterMismatch}, `meta has "`+testCluster+`"`, "")
}

func TestFileNameMustMatchHeader(t *testing.T) {
	s := openStore(t, t.TempDir(), 2)
	m := mustCreate(t, s, 500, 2, []byte("state"))
	renamed := filepath.Join(s.Dir(), Meta{Index: 900, Term: 2}.Name())
	if err := os.Rename(s.Path(m), renamed); err != nil {
		t.Fatal(err)
	}
	checkErr(t, "Verify", s.Verify(filepath.Base(renamed)), []error{ErrBadHeader}, "header says term 2 index 500", renamed)
}

func TestOpenRemovesLeftoverTempFiles(t *testing.T) {
	dir := t.TempDir()
	m := mustCreate(t, openStore(t, dir, 2), 500, 2, []byte("state"))
	for _, name := range []string{"0000000000000002-00000000000003e8.123.tmp", "x.recv.9.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := openStore(t, dir, 2)
	if got := s.RemovedTempFiles(); got != 2 {
		t.Errorf("RemovedTempFiles() = %d, want 2", got)
	}
	assertNoTempFiles(t, dir)
	if err := s.Verify(m.Name()); err != nil {
		t.Errorf("the complete snapshot was disturbed: %v", err)
	}
}

func TestCrashBeforeRenameLeavesNoSnapshot(t *testing.T) {
	dir := t.TempDir()
	crashed := filepath.Join(t.TempDir(), "disk-at-crash")
	s := openStore(t, dir, 2)
	old := mustCreate(t, s, 100, 1, []byte("old"))
	// The crash image is the directory as it is on disk after the temp file
	// is complete and fsynced, just before the rename.
	s.beforeRename = func(tmp string) { copyDir(t, dir, crashed) }
	mustCreate(t, s, 200, 1, randomBody(t, 7, 10000))

	after := openStore(t, crashed, 2)
	if after.RemovedTempFiles() != 1 {
		t.Errorf("RemovedTempFiles() after crash = %d, want 1", after.RemovedTempFiles())
	}
	metas, err := after.List()
	if err != nil || len(metas) != 1 || !metas[0].Same(old) {
		t.Fatalf("List() after crash = %v, %v; want only the old snapshot %s", metas, err, old.Name())
	}
	assertNoTempFiles(t, crashed)
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		name  string
		write func(io.Writer) (int64, error)
		msg   string
	}{
		{"writer fails", func(w io.Writer) (int64, error) {
			w.Write([]byte("half"))
			return 4, errors.New("disk on fire")
		}, "disk on fire"},
		{"writer miscounts", func(w io.Writer) (int64, error) {
			w.Write([]byte("four"))
			return 5, nil
		}, "reported 5 bytes but wrote 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), 2)
			_, err := s.Create(Meta{Index: 1, Term: 1}, tt.write)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Create() = %v, want an error containing %q", err, tt.msg)
			}
			if ents, _ := os.ReadDir(s.Dir()); len(ents) != 0 {
				t.Errorf("failed Create left %d files", len(ents))
			}
			if _, err := s.Latest(); !errors.Is(err, ErrNotFound) {
				t.Errorf("Latest() = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestOpenAndCreateRejectBadArguments(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		cluster string
		keep    int
		msg     string
	}{{"", 2, "cluster id"}, {"c", 0, "keep 0"}, {"c", MaxKept + 1, "keep 101"}} {
		if _, err := Open(dir, tt.cluster, tt.keep); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Open(%q, %d) = %v, want error about %s", tt.cluster, tt.keep, err, tt.msg)
		}
	}
	s := openStore(t, dir, 2)
	for _, m := range []Meta{{Index: 0, Term: 1}, {Index: 1, Term: 0}, {Index: 1, Term: 1, Voters: make([]uint64, MaxVoters+1)}} {
		if _, err := s.Create(m, bodyWriter(nil)); !errors.Is(err, ErrBadHeader) {
			t.Errorf("Create(%d voters, index %d, term %d) = %v, want ErrBadHeader", len(m.Voters), m.Index, m.Term, err)
		}
	}
	if err := s.Remove("0000000000000001-0000000000000001.snap"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove(missing) = %v, want ErrNotFound", err)
	}
}

func checkErr(t *testing.T, op string, err error, is []error, msg, path string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: nil error, want %v", op, is)
		return
	}
	for _, target := range is {
		if !errors.Is(err, target) {
			t.Errorf("%s: %v\nis not %v", op, err, target)
		}
	}
	if !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), path) {
		t.Errorf("%s: %q\nwant it to name %q and contain %q", op, err, path, msg)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x40
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

func assertNoTempFiles(t *testing.T, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), tmpSuffix) {
				t.Errorf("temp file %s left in %s", e.Name(), dir)
			}
		}
	}
}

func TestVerifyFileReadOnly(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "c1", 2)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Create(Meta{Index: 5, Term: 1}, func(w io.Writer) (int64, error) {
		n, err := w.Write([]byte("a body of some bytes"))
		return int64(n), err
	})
	if err != nil {
		t.Fatal(err)
	}
	path := s.Path(m)
	tmp := filepath.Join(dir, "x.recv.1.tmp")
	if err := os.WriteFile(tmp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := VerifyFile(path, "c1"); err != nil || !got.Same(m) {
		t.Fatalf("VerifyFile = %+v, %v; want %+v", got, err, m)
	}
	if _, err := VerifyFile(path, "c2"); !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("VerifyFile for another cluster = %v, want ErrClusterMismatch", err)
	}
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyFile(path, ""); !errors.Is(err, ErrChecksum) {
		t.Fatalf("VerifyFile of a flipped byte = %v, want ErrChecksum", err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("VerifyFile touched the directory: %v", err)
	}
}
