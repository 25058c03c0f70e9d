package rafttest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/raftmq/raftmq/raftlog"
)

// maxFlushEvents bounds one flush: a healed, tick-free cluster must go quiet.
const maxFlushEvents = 100_000

// checkLiveness heals the network and restarts every node, then ticks with
// reliable FIFO delivery until a leader commits a fresh proposal on every
// node, failing after LivenessTicks ticks.
func (s *Sim) checkLiveness() error {
	s.nw.heal()
	for _, n := range s.nodes {
		if !n.up() {
			if err := s.startNode(n); err != nil {
				return err
			}
		}
	}
	s.record(event{kind: "heal-all"})
	s.liveData, s.liveIndex = s.newData(), 0
	defer func() { s.liveData = nil }()
	proposedAt := -1
	for tick := 0; tick < s.opts.LivenessTicks; tick++ {
		if err := s.tickAll(); err != nil {
			return err
		}
		if err := s.flush(); err != nil {
			return err
		}
		if s.liveIndex != 0 && s.allApplied(s.liveIndex) {
			return nil
		}
		// (Re)propose when there is a leader and the last attempt is old
		// enough to have been lost with a leader change.
		if s.liveIndex == 0 && (proposedAt < 0 || tick-proposedAt > 2*s.opts.ElectionTicks) {
			if ls := s.leaders(); len(ls) == 1 {
				err := ls[0].core.Propose(s.liveData)
				s.record(event{kind: "propose", node: ls[0].id, err: err})
				if err == nil {
					proposedAt = tick
				} else if !errors.Is(err, raftlog.ErrProposalDropped) {
					return fmt.Errorf("%w: node %d Propose: %w", ErrCore, ls[0].id, err)
				}
			}
		}
	}
	return fmt.Errorf("%w: %d ticks after healing: proposal applied at index %d (0 = never); %s",
		ErrLiveness, s.opts.LivenessTicks, s.liveIndex, s.describeNodes())
}

// allApplied reports whether every member (of the leader's membership)
// applied index i: removed nodes and spares never added do not.
func (s *Sim) allApplied(i uint64) bool {
	ls := s.leaders()
	if len(ls) != 1 {
		return false
	}
	conf := ls[0].core.Conf()
	for _, n := range s.nodes {
		if conf.IsMember(n.id) && n.applied < i {
			return false
		}
	}
	return true
}

// flush handles every Ready and delivers every message, without loss, until
// nothing is left, checking after each event.
func (s *Sim) flush() error {
	for range maxFlushEvents {
		progress := false
		for _, n := range s.nodes {
			if n.up() && (n.pending != nil || n.core.HasReady()) {
				if err := s.handleReady(n); err != nil {
					return err
				}
				if err := s.check(); err != nil {
					return err
				}
				progress = true
			}
		}
		if env, ok := s.nw.next(true); ok {
			if err := s.deliver(env, true); err != nil {
				return err
			}
			if err := s.check(); err != nil {
				return err
			}
			progress = true
		}
		if !progress {
			return nil
		}
	}
	return fmt.Errorf("%w: the healed cluster did not go quiet within %d events; %s", ErrLiveness, maxFlushEvents, s.describeNodes())
}

func (s *Sim) describeNodes() string {
	var b strings.Builder
	for _, n := range s.nodes {
		if !n.up() {
			fmt.Fprintf(&b, "[n%d down] ", n.id)
			continue
		}
		st := n.core.Status()
		fmt.Fprintf(&b, "[n%d %v term=%d vote=%d lead=%d commit=%d applied=%d last=%d voters=%v learners=%v rec=%v] ",
			st.ID, st.Role, st.Term, st.Vote, st.Lead, st.Commit, n.applied, st.LastIndex, st.Conf.Voters, st.Conf.Learners, st.Recovering)
	}
	return b.String()
}
