package raftlog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// warnLog records the core's warnings.
type warnLog struct {
	mu    sync.Mutex
	warns []string
}

func (l *warnLog) Debugf(string, ...any) {}
func (l *warnLog) Infof(string, ...any)  {}
func (l *warnLog) Warnf(f string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.warns = append(l.warns, fmt.Sprintf(f, args...))
}

func (l *warnLog) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := 0
	for _, w := range l.warns {
		if strings.Contains(w, sub) {
			k++
		}
	}
	return k
}

// TestHeartbeatCommitCappedAtVerified drives one follower by hand: a
// heartbeat advances its commit only up to what the current leader
// verified in this term.
func TestHeartbeatCommitCappedAtVerified(t *testing.T) {
	type step struct {
		m          Message
		wantCommit uint64
	}
	app := func(term, index, logTerm, commit uint64, entTerms ...uint64) Message {
		var es []Entry
		for i, tm := range entTerms {
			es = append(es, Entry{Index: index + 1 + uint64(i), Term: tm, Type: EntryNormal})
		}
		return Message{Type: MsgApp, From: 1, To: 2, Term: term, Index: index, LogTerm: logTerm, Commit: commit, Entries: es}
	}
	beat := func(from, term, commit uint64) Message {
		return Message{Type: MsgHeartbeat, From: from, To: 2, Term: term, Commit: commit}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"heartbeat before any append commits nothing", []step{
			{beat(1, 1, 5), 0},
		}},
		{"heartbeat commits up to the appended last index", []step{
			{app(1, 0, 0, 0, 1, 1, 1), 0},
			{beat(1, 1, 5), 3},
		}},
		{"append commit is min(commit, last new)", []step{
			{app(1, 0, 0, 9, 1, 1), 2},
		}},
		{"a probe that matches verifies up to its index", []step{
			{app(1, 0, 0, 0, 1, 1, 1, 1), 0},
			{app(2, 2, 1, 0), 0},
			{beat(1, 2, 4), 2},
			{app(2, 4, 1, 0), 2},
			{beat(1, 2, 4), 4},
		}},
		{"a new term forgets what the old leader verified", []step{
			{app(1, 0, 0, 0, 1, 1, 1), 0},
			{beat(3, 2, 3), 0},
		}},
		{"a rejected append verifies nothing", []step{
			{app(1, 0, 0, 0, 1), 0},
			{app(1, 5, 1, 0), 0},
			{beat(1, 1, 1), 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := NewMemoryStorage()
			st.SetConfState(ConfState{Voters: ids(3)})
			c, err := New(testConfig(2, ids(3), st, 1))
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				if err := c.Step(s.m); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got := c.log.committed; got != s.wantCommit {
					t.Fatalf("step %d (%v commit %d): committed %d, want %d", i, s.m.Type, s.m.Commit, got, s.wantCommit)
				}
			}
		})
	}
}

// TestWipedFollowerWithStaleLeaderEntries: a wiped follower first hears
// from a stale leader and appends entries the current leader does not
// have; the current leader's heartbeat offers commit up to the follower's
// old match. Capping at the follower's last index would commit the stale
// entries; the core must not, must repair the follower, and with the
// leader's log compacted, repair it by snapshot.
func TestWipedFollowerWithStaleLeaderEntries(t *testing.T) {
	for _, compact := range []bool{false, true} {
		t.Run(fmt.Sprintf("compacted=%v", compact), func(t *testing.T) {
			logger := &warnLog{}
			n := newNetwork(t, 3, ids(3), func(c *Config) { c.Logger = logger })
			n.elect(2) // term 1: its no-op is entry 1
			n.elect(1) // term 2
			for _, d := range []string{"a", "b", "c"} {
				n.propose(1, d)
			}
			lead := n.core(1)
			match := lead.prs[3].match
			if match != 5 || lead.log.committed != 5 {
				t.Fatalf("setup: match %d commit %d", match, lead.log.committed)
			}
			if compact {
				if err := n.nodes[1].storage.Compact(3); err != nil {
					t.Fatal(err)
				}
			}
			n.wipe(3, false)
			n.nodes[3].cfg.Logger = logger
			// The stale leader of term 1 (node 2 before it heard of term
			// 2, with entries it never committed) reaches the wiped node
			// first.
			stale := []Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1, Data: []byte("x")},
				{Index: 3, Term: 1, Data: []byte("y")}, {Index: 4, Term: 1, Data: []byte("z")}}
			if err := n.core(3).Step(Message{Type: MsgApp, From: 2, To: 3, Term: 1, Entries: stale}); err != nil {
				t.Fatal(err)
			}
			n.persist(3)
			n.queue = nil
			if got := n.core(3).log.lastIndex(); got != 4 {
				t.Fatalf("wiped node holds %d entries, want the 4 stale ones", got)
			}
			var beats []Message
			n.filter = func(m Message) (Message, bool) {
				if m.Type == MsgHeartbeat && m.To == 3 {
					beats = append(beats, m)
				}
				return m, true
			}
			_ = lead.Step(Message{Type: MsgBeat})
			n.stabilize() // checks that no two nodes applied different entries
			if len(beats) == 0 || beats[0].Commit != match {
				t.Fatalf("leader heartbeats to 3: %+v, want commit %d", beats, match)
			}
			if got := n.appliedData(3); slices.Contains(got, "x") {
				t.Fatalf("wiped node applied the stale leader's entries: %v", got)
			}
			if logger.count("lost data") != 1 {
				t.Fatalf("lost-data warnings %d, want 1: %q", logger.count("lost data"), logger.warns)
			}
			if got, want := n.logTerms(3), n.logTerms(1); !slices.Equal(got, want) {
				t.Fatalf("follower log %v, leader %v", got, want)
			}
			if snaps := len(n.nodes[3].snapshots); snaps != map[bool]int{false: 0, true: 1}[compact] {
				t.Fatalf("follower installed %d snapshots (compacted %v)", snaps, compact)
			}
			n.propose(1, "d")
			want := []string{"a", "b", "c", "d"}
			if compact {
				want = []string{"b", "c", "d"} // a came inside the snapshot
			}
			if got := n.appliedData(3); !slices.Equal(got, want) {
				t.Fatalf("follower applied %v, want %v", got, want)
			}
			if pr := lead.prs[3]; pr.match != lead.log.lastIndex() || pr.state != stateReplicate {
				t.Fatalf("leader's progress of 3: %v", pr)
			}
		})
	}
}

// TestRecoveringNeverVotesNorCampaigns: a recovering node rejects Vote and
// PreVote, ignores MsgTimeoutNow and its election timeout.
func TestRecoveringNeverVotesNorCampaigns(t *testing.T) {
	for _, preVote := range []bool{false, true} {
		t.Run(fmt.Sprintf("prevote=%v", preVote), func(t *testing.T) {
			st := NewMemoryStorage()
			st.SetConfState(ConfState{Voters: ids(3)})
			cfg := testConfig(3, ids(3), st, 5)
			cfg.Recovering, cfg.PreVote = true, preVote
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !c.Status().Recovering {
				t.Fatalf("status %+v does not report recovering", c.Status())
			}
			for range 10 * cfg.ElectionTicks {
				c.Tick()
			}
			_ = c.Step(Message{Type: MsgTimeoutNow, From: 1, To: 3, Term: c.term})
			_ = c.Campaign()
			for _, typ := range []MessageType{MsgVote, MsgPreVote} {
				_ = c.Step(Message{Type: typ, From: 2, To: 3, Term: 5, Index: 10, LogTerm: 4})
			}
			rd := c.Ready()
			c.Advance(rd)
			if c.Role() != RoleFollower || c.vote != None {
				t.Fatalf("recovering node: role %v vote %d", c.Role(), c.vote)
			}
			var resps []MessageType
			for _, m := range rd.Messages {
				switch {
				case m.Type == MsgVoteResp || m.Type == MsgPreVoteResp:
					if !m.Reject {
						t.Fatalf("recovering node granted %+v", m)
					}
					resps = append(resps, m.Type)
				default:
					t.Fatalf("recovering node sent %+v", m)
				}
			}
			if !slices.Equal(resps, []MessageType{MsgVoteResp, MsgPreVoteResp}) {
				t.Fatalf("answers %v, want a rejected vote and pre-vote", resps)
			}
		})
	}
}

func TestRecoveringOneVoterRefused(t *testing.T) {
	st := NewMemoryStorage()
	cfg := testConfig(1, []uint64{1}, st, 1)
	cfg.Recovering = true
	if _, err := New(cfg); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("New(recovering, one voter) = %v, want ErrBadConfig", err)
	}
}

// TestRecoveringNodeBlocksQuorumUntilRepaired: in a 3-node cluster whose
// leader is gone, a healthy node and a recovering one cannot elect anyone
// (the recovering node's vote is needed and refused); once a leader
// repairs it, the recovering node becomes a voter and can even lead, with
// every committed entry.
func TestRecoveringNodeBlocksQuorumUntilRepaired(t *testing.T) {
	for _, tc := range []struct {
		preVote, checkQuorum, compact bool
	}{{false, false, false}, {true, true, false}, {true, false, true}, {false, true, true}} {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			n := newNetwork(t, 11, ids(3), func(c *Config) { c.PreVote, c.CheckQuorum = tc.preVote, tc.checkQuorum })
			n.elect(1)
			for _, d := range []string{"a", "b", "c"} {
				n.propose(1, d)
			}
			if tc.compact {
				for _, id := range []uint64{1, 2} {
					if err := n.nodes[id].storage.Compact(3); err != nil {
						t.Fatal(err)
					}
				}
			}
			n.wipe(3, true)
			n.isolate(1)
			n.tick(100, 2, 3)
			for _, id := range []uint64{2, 3} {
				if n.core(id).Role() == RoleLeader {
					t.Fatalf("node %d leads with a recovering node's vote:\n%v", id, n)
				}
			}
			if !n.core(3).Recovering() {
				t.Fatal("node 3 recovered without a leader")
			}
			// Node 1 returns; 1 and 2 elect a leader, which repairs 3.
			n.heal()
			n.tick(100)
			lead := n.leader()
			if lead == None || lead == 3 {
				t.Fatalf("leader %d after healing:\n%v", lead, n)
			}
			if n.core(3).Recovering() || n.nodes[3].cfg.Recovering {
				t.Fatalf("node 3 still recovering: %+v", n.core(3).Status())
			}
			// Now node 3 votes, so it can win an election: a transfer
			// makes it campaign at once.
			other := uint64(1)
			if lead == 1 {
				other = 2
			}
			n.core(lead).TransferLeadership(3)
			n.stabilize()
			if n.leader() != 3 {
				t.Fatalf("node 3 did not win the election:\n%v", n)
			}
			n.propose(3, "d")
			want := n.appliedData(3)
			if !slices.Contains(want, "d") || !slices.Contains(want, "c") {
				t.Fatalf("node 3 applied %v", want)
			}
			if got := n.appliedData(other); !slices.Equal(got[len(got)-len(want):], want) {
				t.Fatalf("node %d applied %v, node 3 %v", other, got, want)
			}
		})
	}
}

// TestRecoveringEndsAtLeaderCommit: the node stays recovering until its
// persisted commit reaches the leader's commit index learned from the
// first MsgApp, and a restart before then keeps it recovering.
func TestRecoveringEndsAtLeaderCommit(t *testing.T) {
	n := newNetwork(t, 4, ids(3), nil)
	n.elect(1)
	for _, d := range []string{"a", "b", "c"} {
		n.propose(1, d)
	}
	target := n.core(1).log.committed
	n.wipe(3, true)
	// Let only the leader's appends through, and no answers: node 3 learns
	// the target and appends, but nothing more commits.
	n.filter = func(m Message) (Message, bool) { return m, m.To == 3 && m.Type == MsgApp }
	_ = n.core(1).Step(Message{Type: MsgBeat})
	n.stabilize()
	n.core(1).sendAppend(3)
	n.stabilize()
	if st := n.core(3).Status(); !st.Recovering {
		t.Fatalf("node 3 ended recovering at %+v (target %d)", st, target)
	}
	n.restart(3)
	if !n.core(3).Recovering() {
		t.Fatal("restart lost the recovering flag")
	}
	n.filter = nil
	n.tick(5)
	st := n.core(3).Status()
	if st.Recovering || st.Commit < target {
		t.Fatalf("node 3 %+v, target %d", st, target)
	}
	if got := n.appliedData(3); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("node 3 applied %v", got)
	}
}

// TestRecoveryTargetWaitsForLeaderTermCommit: a new leader's commit index
// may lag what earlier leaders committed until it commits an entry of its
// own term, so a recovering node does not take it as its target before.
func TestRecoveryTargetWaitsForLeaderTermCommit(t *testing.T) {
	st := NewMemoryStorage()
	st.SetConfState(ConfState{Voters: ids(3)})
	cfg := testConfig(3, ids(3), st, 2)
	cfg.Recovering = true
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ents := []Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1}, {Index: 3, Term: 2}, {Index: 4, Term: 3}}
	step := func(m Message) {
		t.Helper()
		if err := c.Step(m); err != nil {
			t.Fatal(err)
		}
		for c.HasReady() {
			rd := c.Ready()
			persistReady(t, st, rd)
			c.Advance(rd)
		}
	}
	tests := []struct {
		m              Message
		wantCommit     uint64
		wantRecovering bool
	}{
		// The term-3 leader has not yet committed its no-op (4): commit 2
		// is a term-1 entry, maybe behind what leader 2 committed.
		{Message{Type: MsgApp, From: 2, To: 3, Term: 3, Entries: ents, Commit: 2}, 2, true},
		{Message{Type: MsgHeartbeat, From: 2, To: 3, Term: 3, Commit: 3}, 3, true},
		{Message{Type: MsgApp, From: 2, To: 3, Term: 3, Index: 4, LogTerm: 3, Commit: 4}, 4, false},
	}
	for i, tc := range tests {
		step(tc.m)
		if s := c.Status(); s.Commit != tc.wantCommit || s.Recovering != tc.wantRecovering {
			t.Fatalf("after step %d (%v commit %d): commit %d recovering %v, want %d %v",
				i, tc.m.Type, tc.m.Commit, s.Commit, s.Recovering, tc.wantCommit, tc.wantRecovering)
		}
	}
}
