package storage

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/raftmq/raftmq/raftlog"
)

// MemberAddr is one member's addresses, as a membership change carried
// them.
type MemberAddr struct {
	IP           string `json:"ip"`
	Port         int    `json:"port"`
	InternalPort int    `json:"internal_port"`
}

// Members is what the broker records of the membership beyond the ids
// (which the conf record holds): the addresses of every member added by a
// change, and the ids removed, which never come back. Index is the log
// index of the newest change recorded (0: none).
type Members struct {
	Addrs   map[uint64]MemberAddr `json:"addrs,omitempty"`
	Removed []uint64              `json:"removed,omitempty"`
	Index   uint64                `json:"index,omitempty"`
}

// maxMembersBytes bounds a decoded members record.
const maxMembersBytes = 1 << 20

func decodeMembers(b []byte) (Members, error) {
	var m Members
	if len(b) > maxMembersBytes {
		return m, fmt.Errorf("members record of %d bytes, at most %d", len(b), maxMembersBytes)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Members{}, fmt.Errorf("members record: %w", err)
	}
	if len(m.Addrs)+len(m.Removed) > maxVoters {
		return Members{}, fmt.Errorf("members record names %d ids, at most %d", len(m.Addrs)+len(m.Removed), maxVoters)
	}
	return m, nil
}

func (m Members) clone() Members {
	return Members{Addrs: maps.Clone(m.Addrs), Removed: slices.Clone(m.Removed), Index: m.Index}
}

// Members returns the recorded members (empty if none was recorded).
func (r *RaftDB) Members() Members {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.members.clone()
}

// SetMembers records m and the membership cs in one durable write: the
// broker calls it as it applies a membership change.
func (r *RaftDB) SetMembers(m Members, cs raftlog.ConfState) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("storage: encode members: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	err = r.updateLocked("set members", func(tx *bbolt.Tx) error {
		if err := putSealed(tx.Bucket(bucketMeta), keyMembers, b); err != nil {
			return err
		}
		return putSealed(tx.Bucket(bucketMeta), keyConf, appendConfState(nil, cs))
	})
	if err != nil {
		return err
	}
	r.members = m.clone()
	r.conf = cloneConf(cs)
	return nil
}
