package broker

import (
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

// TestTransferTarget: a stopping leader hands over only to a follower it
// heard from within the election timeout, the most up-to-date first, and
// never twice to the same one; with none left there is no target.
func TestTransferTarget(t *testing.T) {
	pp := func(match uint64, active bool) raftlog.PeerProgress {
		return raftlog.PeerProgress{Match: match, Next: match + 1, RecentActive: active}
	}
	tests := []struct {
		name     string
		progress map[uint64]raftlog.PeerProgress
		tried    map[uint64]bool
		want     uint64
	}{
		{"best follower dead", map[uint64]raftlog.PeerProgress{1: pp(9, true), 2: pp(9, false), 3: pp(7, true), 4: pp(8, true)}, nil, 4},
		{"tie goes to the lowest id", map[uint64]raftlog.PeerProgress{1: pp(9, true), 2: pp(9, false), 3: pp(9, true), 4: pp(9, true)}, nil, 3},
		{"next after a failed try", map[uint64]raftlog.PeerProgress{1: pp(9, true), 2: pp(9, true), 3: pp(8, true)}, map[uint64]bool{2: true}, 3},
		{"all followers dead", map[uint64]raftlog.PeerProgress{1: pp(9, true), 2: pp(9, false), 3: pp(9, false)}, nil, raftlog.None},
		{"every live one tried", map[uint64]raftlog.PeerProgress{1: pp(9, true), 2: pp(9, true), 3: pp(9, false)}, map[uint64]bool{2: true}, raftlog.None},
		{"not leader", nil, nil, raftlog.None},
	}
	for _, tt := range tests {
		st := raftlog.Status{ID: 1, Role: raftlog.RoleLeader, Progress: tt.progress}
		if got := transferTarget(st, tt.tried); got != tt.want {
			t.Errorf("%s: target %d, want %d", tt.name, got, tt.want)
		}
	}
}
