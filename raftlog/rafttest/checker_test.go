package rafttest

import (
	"errors"
	"testing"

	"github.com/raftmq/raftmq/raftlog"
)

func ent(index, term uint64, data string) raftlog.Entry {
	return raftlog.Entry{Index: index, Term: term, Type: raftlog.EntryNormal, Data: []byte(data)}
}

func leaderStatus(id, term, commit uint64) raftlog.Status {
	return raftlog.Status{ID: id, Role: raftlog.RoleLeader, Term: term, Commit: commit, LastIndex: commit}
}

func followerStatus(id, term, commit uint64) raftlog.Status {
	return raftlog.Status{ID: id, Role: raftlog.RoleFollower, Term: term, Commit: commit, LastIndex: commit}
}

// TestCheckerCatchesViolations feeds the checker hand-made histories, each
// breaking one property at its last operation, so the checkers themselves
// are shown able to fail. The healthy history checks they do not cry wolf.
func TestCheckerCatchesViolations(t *testing.T) {
	type op func(c *Checker) error
	persist := func(id uint64, ents ...raftlog.Entry) op {
		return func(c *Checker) error { return c.PersistEntries(id, ents) }
	}
	hard := func(id, term, vote uint64) op {
		return func(c *Checker) error {
			return c.PersistHardState(id, raftlog.HardState{Term: term, Vote: vote})
		}
	}
	apply := func(id, term uint64, e raftlog.Entry) op {
		return func(c *Checker) error { return c.Apply(id, term, e) }
	}
	status := func(st raftlog.Status) op {
		return func(c *Checker) error { return c.Status(st) }
	}
	restart := func(id, applied uint64) op {
		return func(c *Checker) error { c.Restart(id, applied); return nil }
	}
	snapshot := func(id, index, term uint64) op {
		return func(c *Checker) error {
			return c.InstallSnapshot(id, raftlog.SnapshotMeta{Index: index, Term: term})
		}
	}
	send := func(m raftlog.Message) op {
		return func(c *Checker) error { return c.Send(m) }
	}
	// healthy: node 1 leads term 1, replicates to 2, both apply; node 2
	// leads term 2 holding everything; node 3 catches up by snapshot.
	healthy := []op{
		send(raftlog.Message{Type: raftlog.MsgPreVote, From: 1, To: 2, Term: 1}),
		hard(1, 1, 1), hard(2, 1, 1),
		send(raftlog.Message{Type: raftlog.MsgVoteResp, From: 2, To: 1, Term: 1}),
		status(leaderStatus(1, 1, 0)),
		persist(1, ent(1, 1, ""), ent(2, 1, "a")),
		persist(2, ent(1, 1, ""), ent(2, 1, "a")),
		send(raftlog.Message{Type: raftlog.MsgAppResp, From: 2, To: 1, Term: 1, Index: 2}),
		status(leaderStatus(1, 1, 2)),
		apply(1, 1, ent(1, 1, "")), apply(1, 1, ent(2, 1, "a")),
		apply(2, 1, ent(1, 1, "")),
		status(followerStatus(2, 1, 2)),
		hard(2, 2, 2),
		status(leaderStatus(2, 2, 2)),
		persist(2, ent(3, 2, "")),
		persist(1, ent(3, 2, "")),
		apply(2, 2, ent(2, 1, "a")),
		snapshot(3, 2, 1),
		persist(3, ent(3, 2, "")),
		apply(3, 2, ent(3, 2, "")),
		restart(1, 0),
		status(followerStatus(1, 1, 0)), // term 1 was persisted; commit restarts low
		apply(1, 2, ent(1, 1, "")),
	}
	tests := []struct {
		name string
		ops  []op
		want error // nil: the history is healthy
	}{
		{"healthy history", healthy, nil},
		{"two leaders in one term", []op{
			status(leaderStatus(1, 3, 0)),
			status(followerStatus(1, 4, 0)),
			status(leaderStatus(2, 3, 0)),
		}, ErrElectionSafety},
		{"vote changed within a term", []op{
			hard(1, 2, 1), hard(1, 2, 3),
		}, ErrElectionSafety},
		{"divergent applied entries", []op{
			persist(1, ent(1, 1, "x")), persist(2, ent(1, 2, "y")),
			apply(1, 1, ent(1, 1, "x")),
			apply(2, 2, ent(1, 2, "y")),
		}, ErrStateMachineSafety},
		{"same index and term, different data applied", []op{
			persist(1, ent(1, 1, "x")),
			apply(1, 1, ent(1, 1, "x")),
			restart(1, 0),
			apply(1, 1, ent(1, 1, "z")),
		}, ErrStateMachineSafety},
		{"applied out of order", []op{
			persist(1, ent(1, 1, ""), ent(2, 1, "")),
			apply(1, 1, ent(2, 1, "")),
		}, ErrStateMachineSafety},
		{"applied beyond the persisted log", []op{
			apply(1, 1, ent(1, 1, "")),
		}, ErrStateMachineSafety},
		{"same index and term, different prefixes", []op{
			persist(1, ent(1, 1, ""), ent(2, 2, "a")),
			persist(2, ent(1, 3, ""), ent(2, 2, "a")),
		}, ErrLogMatching},
		{"same index and term, different data", []op{
			persist(1, ent(1, 1, "a")),
			persist(2, ent(1, 1, "b")),
		}, ErrLogMatching},
		{"gap in a persisted log", []op{
			persist(1, ent(1, 1, "")), persist(1, ent(3, 1, "")),
		}, ErrLogMatching},
		{"leader lacks a committed entry", []op{
			persist(1, ent(1, 1, ""), ent(2, 1, "a")),
			apply(1, 1, ent(1, 1, "")), apply(1, 1, ent(2, 1, "a")),
			persist(2, ent(1, 1, "")),
			status(leaderStatus(2, 2, 1)),
		}, ErrLeaderCompleteness},
		{"leader holds a different entry at a committed index", []op{
			persist(1, ent(1, 1, "")), apply(1, 1, ent(1, 1, "")),
			persist(2, ent(1, 2, "")),
			status(leaderStatus(2, 3, 0)),
		}, ErrLeaderCompleteness},
		{"commit index decreased", []op{
			status(followerStatus(1, 1, 5)),
			status(followerStatus(1, 1, 4)),
		}, ErrCommitRegressed},
		{"term decreased while live", []op{
			status(followerStatus(1, 5, 0)),
			status(followerStatus(1, 4, 0)),
		}, ErrTermRegressed},
		{"term below the persisted term after restart", []op{
			hard(1, 5, 0),
			restart(1, 0),
			status(followerStatus(1, 4, 0)),
		}, ErrTermRegressed},
		{"persisted term decreased", []op{
			hard(1, 5, 0), hard(1, 4, 0),
		}, ErrTermRegressed},
		{"message sent with an unpersisted term", []op{
			hard(1, 2, 0),
			send(raftlog.Message{Type: raftlog.MsgHeartbeat, From: 1, To: 2, Term: 3}),
		}, ErrDurability},
		{"vote granted before it was persisted", []op{
			hard(2, 3, 0),
			send(raftlog.Message{Type: raftlog.MsgVoteResp, From: 2, To: 1, Term: 3}),
		}, ErrDurability},
		{"entries acknowledged before they were persisted", []op{
			hard(2, 1, 0), persist(2, ent(1, 1, "")),
			send(raftlog.Message{Type: raftlog.MsgAppResp, From: 2, To: 1, Term: 1, Index: 2}),
		}, ErrDurability},
		{"commit beyond the last index", []op{
			status(raftlog.Status{ID: 1, Term: 1, Commit: 3, LastIndex: 2}),
		}, ErrStatusInvariant},
		{"snapshot of an uncommitted index", []op{
			snapshot(1, 3, 1),
		}, ErrStateMachineSafety},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChecker()
			for i, o := range tt.ops {
				err := o(c)
				last := i == len(tt.ops)-1
				switch {
				case err != nil && (!last || tt.want == nil):
					t.Fatalf("op %d: unexpected %v", i, err)
				case last && tt.want != nil && !errors.Is(err, tt.want):
					t.Fatalf("last op: got %v, want %v", err, tt.want)
				}
			}
		})
	}
}
