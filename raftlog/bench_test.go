package raftlog

import (
	"fmt"
	"testing"
)

// BenchmarkProposeCommit measures one proposal's trip through a cluster on
// the in-memory network: propose, persist, replicate, commit, apply.
func BenchmarkProposeCommit(b *testing.B) {
	for _, size := range []int{1, 3, 5} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			n := newNetwork(b, 1, ids(size), nil)
			n.skipSafety = true
			_ = n.core(1).Campaign()
			n.stabilize()
			data := make([]byte, 128)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := n.core(1).Propose(data); err != nil {
					b.Fatal(err)
				}
				n.stabilize()
			}
		})
	}
}
