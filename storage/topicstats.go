package storage

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// TopicStats is one topic's queue by delivery state (decision 16) and its
// bytes, for metrics.
type TopicStats struct {
	Name                   string
	Ready, Leased, Delayed uint64
	Bytes                  uint64
}

// TopicStats returns every topic, in creation order, with its messages by
// state: one pass over the topic records, never over the messages.
func (s *StateDB) TopicStats() ([]TopicStats, error) {
	var out []TopicStats
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTopics)
		if b == nil {
			return corruptError(s.path, "missing topics bucket (not a state.db?)")
		}
		return b.ForEach(func(k, v []byte) error {
			payload, err := unseal(k, v)
			if err != nil {
				return corruptError(s.path, err.Error())
			}
			t, err := decodeTopic(payload)
			if err != nil {
				return corruptError(s.path, fmt.Sprintf("topic record %x: %v", k, err))
			}
			out = append(out, TopicStats{Name: t.name, Ready: t.ready(), Leased: t.leased, Delayed: t.delayed, Bytes: t.bytes})
			return nil
		})
	})
	return out, err
}

// LiveBytes estimates the bytes state.db's live pages take: its size less
// its free pages, as of the last commit. A snapshot copies about this
// much.
func (s *StateDB) LiveBytes() uint64 {
	s.mu.Lock()
	db := s.db
	s.mu.Unlock()
	var size int64
	if err := db.View(func(tx *bbolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		return 0
	}
	free := int64(db.Stats().FreeAlloc)
	return uint64(max(size-free, 0))
}
