package storage

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// migrateV1 upgrades a version 1 state.db (every queued message ready,
// topic records of name, head, tail, bytes) to version 2 inside the open
// transaction: each topic gets its version 2 record and a ready bucket
// listing its messages. Sessions decode in both versions.
func migrateV1(tx *bbolt.Tx, path string) error {
	topics := tx.Bucket(bucketTopics)
	type rec struct {
		key []byte
		t   topic
	}
	var recs []rec
	err := topics.ForEach(func(k, v []byte) error {
		payload, err := unseal(k, v)
		if err != nil {
			return corruptError(path, err.Error())
		}
		r := reader{b: payload}
		name := string(r.bytesN(r.uvarint("name length"), "name"))
		head, tail, bytes := r.u64("head"), r.u64("tail"), r.u64("bytes")
		if err := r.done("version 1 topic"); err != nil || head > tail {
			return corruptError(path, fmt.Sprintf("version 1 topic record %x: %v (head %d tail %d)", k, err, head, tail))
		}
		recs = append(recs, rec{key: append([]byte(nil), k...), t: topic{name: name, tail: tail, count: tail - head, bytes: bytes}})
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		q := tx.Bucket(bucketQueues).Bucket(r.key)
		if q == nil {
			return corruptError(path, fmt.Sprintf("topic %q has no queue bucket", r.t.name))
		}
		ready, err := tx.Bucket(bucketReady).CreateBucketIfNotExists(r.key)
		if err != nil {
			return err
		}
		if err := q.ForEach(func(k, _ []byte) error { return ready.Put(append([]byte(nil), k...), []byte{}) }); err != nil {
			return err
		}
		if err := putSealedKey(topics, r.key, encodeTopic(r.t)); err != nil {
			return err
		}
	}
	return putSealed(tx.Bucket(bucketMeta), keyFormat, []byte{stateFormatVersion})
}
