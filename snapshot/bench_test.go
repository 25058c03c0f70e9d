package snapshot

import (
	"crypto/sha256"
	"hash"
	"hash/crc32"
	"testing"
)

const benchBodyBytes = 64 << 20

// BenchmarkCreate measures Create of a 64 MiB body: checksum, write, fsync,
// rename, fsync of the directory, prune. MB/s is body bytes per second.
func BenchmarkCreate(b *testing.B) {
	body := randomBody(b, 1, benchBodyBytes)
	s := openStore(b, b.TempDir(), 2)
	b.SetBytes(benchBodyBytes)
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Create(Meta{Index: uint64(i + 1), Term: 1}, bodyWriter(body)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures Verify of a 64 MiB snapshot (read from the page
// cache: this is the checksum and copy cost, not the disk's).
func BenchmarkVerify(b *testing.B) {
	s := openStore(b, b.TempDir(), 2)
	m, err := s.Create(Meta{Index: 1, Term: 1}, bodyWriter(randomBody(b, 2, benchBodyBytes)))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchBodyBytes)
	b.ResetTimer()
	for range b.N {
		if err := s.Verify(m.Name()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChecksum compares the body checksum candidates on 1 MiB blocks.
func BenchmarkChecksum(b *testing.B) {
	block := randomBody(b, 3, 1<<20)
	for _, c := range []struct {
		name string
		h    func() hash.Hash
	}{
		{"crc32c", func() hash.Hash { return crc32.New(castagnoli) }},
		{"sha256", sha256.New},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := c.h()
			b.SetBytes(int64(len(block)))
			for range b.N {
				h.Write(block)
			}
		})
	}
}
