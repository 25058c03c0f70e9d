package snapshot

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

const testCluster = "c0ffee0123456789"

// randomBody returns n deterministic pseudo-random bytes and logs the seed
// if the test fails.
func randomBody(t testing.TB, seed uint64, n int) []byte {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("body seed %d (%d bytes)", seed, n)
		}
	})
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// bodyWriter is a Create write func that writes body the way bbolt's
// Tx.WriteTo does: in page-sized pieces.
func bodyWriter(body []byte) func(io.Writer) (int64, error) {
	return func(w io.Writer) (int64, error) {
		var n int64
		for rest := body; len(rest) > 0; {
			k := min(len(rest), 4096)
			m, err := w.Write(rest[:k])
			n += int64(m)
			if err != nil {
				return n, err
			}
			rest = rest[k:]
		}
		return n, nil
	}
}

func openStore(t testing.TB, dir string, keep int) *Store {
	t.Helper()
	s, err := Open(dir, testCluster, keep)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func mustCreate(t testing.TB, s *Store, index, term uint64, body []byte) Meta {
	t.Helper()
	m, err := s.Create(Meta{Index: index, Term: term, Voters: []uint64{1, 2, 3}}, bodyWriter(body))
	if err != nil {
		t.Fatalf("Create(index %d, term %d): %v", index, term, err)
	}
	return m
}

// readAll reads a snapshot body through OpenSnapshot.
func readAll(t testing.TB, s *Store, m Meta) []byte {
	t.Helper()
	_, rc, err := s.OpenSnapshot(m)
	if err != nil {
		t.Fatalf("OpenSnapshot(%s): %v", m.Name(), err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rc); err != nil {
		t.Fatalf("read %s: %v", m.Name(), err)
	}
	return buf.Bytes()
}
