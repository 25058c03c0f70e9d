package storage

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// verifyStateRecords checks the checksum of every sealed record in
// state.db: meta counters, topics, sessions and every queued message.
// Damage goes into rep.Problems and rep.ChecksumErrors.
func verifyStateRecords(rep *Report, tx *bbolt.Tx, path string) {
	check := func(bucket string, b *bbolt.Bucket) {
		_ = b.ForEach(func(k, v []byte) error {
			if v == nil {
				return nil // a nested bucket
			}
			if _, err := unseal(k, v); err != nil {
				rep.ChecksumErrors++
				rep.problem("%s: %s: %v", path, bucket, err)
			}
			return nil
		})
	}
	for _, name := range [][]byte{bucketMeta, bucketTopics, bucketSessions} {
		b := tx.Bucket(name)
		if b == nil {
			rep.problem("%s: missing %s bucket", path, name)
			continue
		}
		check(string(name), b)
	}
	queues := tx.Bucket(bucketQueues)
	if queues == nil {
		rep.problem("%s: missing %s bucket", path, bucketQueues)
		return
	}
	_ = queues.ForEach(func(k, v []byte) error {
		if v != nil {
			rep.problem("%s: queues: key %x is a value, not a queue bucket", path, k)
			return nil
		}
		check(fmt.Sprintf("queue %x", k), queues.Bucket(k))
		return nil
	})
}
