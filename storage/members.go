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

// EncodeMembers is the members record's encoding, in raft.db and in
// snapshot headers.
func EncodeMembers(m Members) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("storage: encode members: %w", err)
	}
	return b, nil
}

// DecodeMembers decodes and bounds a members record (from a snapshot).
func DecodeMembers(b []byte) (Members, error) { return decodeMembers(b) }

// Merge is m, as of a snapshot at a newer index, with what old knows that m
// does not: removed ids stay removed (never forgotten), and addresses of
// ids m does not name are kept. Index is the newer of the two.
func (m Members) Merge(old Members) Members {
	out := m.clone()
	if out.Addrs == nil {
		out.Addrs = map[uint64]MemberAddr{}
	}
	for id, a := range old.Addrs {
		if _, ok := out.Addrs[id]; !ok {
			out.Addrs[id] = a
		}
	}
	for _, id := range old.Removed {
		if !slices.Contains(out.Removed, id) {
			out.Removed = append(out.Removed, id)
		}
	}
	out.Index = max(out.Index, old.Index)
	return out
}

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
	b, err := EncodeMembers(m)
	if err != nil {
		return err
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
