package raftlog

import (
	"fmt"
	"slices"
)

// MaxTerm and MaxIndex are the largest term and log index a node accepts or
// ever produces. They leave the top bit free so that term+1 and index+n
// never wrap: no legitimate cluster gets near 2^63 (a new term every
// millisecond for 290 million years).
const (
	MaxTerm  uint64 = 1<<63 - 1
	MaxIndex uint64 = 1<<63 - 1
)

// MaxContextBytes bounds Message.Context (read-index ids and the campaign
// kind are a few bytes).
const MaxContextBytes = 64

// ValidateMessage checks the structure of a message received from the
// network, before Step: the rules every message a correct node sends
// obeys, so that a forged or damaged frame is dropped here and never
// reaches an invariant of the core. It is pure and cheap (one pass over the
// entries). The error wraps ErrInvalidMessage and says which rule broke.
//
// The rules:
//   - the type is a network type (not local);
//   - every term and index is at most MaxTerm / MaxIndex;
//   - every type but MsgReadIndex carries a term, MsgReadIndex none;
//   - a field the type never carries is zero (entries, snapshot, reject,
//     hint, commit, context);
//   - MsgApp's entries are numbered Index+1, Index+2, ... with terms that do
//     not decrease, at least LogTerm and at most the message's term;
//   - LogTerm is at most the message's term;
//   - a rejection's hint is at most the rejected index;
//   - MsgSnap's snapshot has an index and a term (at most the message's)
//     and a well-formed membership.
//
// What it cannot check is whether the sender tells the truth: a well-formed
// forged message from a member can still disturb the cluster. Keeping
// strangers out is the transport's job (ValidateSender, CURVE).
//
// A MsgApp's Commit may be beyond its last entry: a leader announces its
// commit index whatever it sends. The core only uses it up to the last
// index the message proves to match.
func ValidateMessage(m Message) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %v from %d: %s", ErrInvalidMessage, m.Type, m.From, fmt.Sprintf(format, args...))
	}
	if _, ok := msgTypeNames[m.Type]; !ok {
		return fmt.Errorf("%w: unknown message type %d", ErrInvalidMessage, m.Type)
	}
	if m.Type.IsLocal() {
		return bad("local message type on the network")
	}
	if m.From == None {
		return bad("no sender")
	}
	for _, f := range [...]struct {
		name string
		v    uint64
	}{{"term", m.Term}, {"log term", m.LogTerm}, {"index", m.Index}, {"commit", m.Commit},
		{"reject hint", m.RejectHint}, {"snapshot index", m.Snapshot.Index}, {"snapshot term", m.Snapshot.Term}} {
		if f.v > MaxTerm {
			return bad("%s %d is above %d", f.name, f.v, MaxTerm)
		}
	}
	if m.Type == MsgReadIndex {
		if m.Term != 0 {
			return bad("term %d on a forwarded read index", m.Term)
		}
	} else if m.Term == 0 {
		return bad("no term")
	}
	if m.LogTerm > m.Term && m.Type != MsgReadIndex {
		return bad("log term %d above the message's term %d", m.LogTerm, m.Term)
	}
	if len(m.Context) > MaxContextBytes {
		return bad("context of %d bytes, at most %d", len(m.Context), MaxContextBytes)
	}

	// Fields each type may carry.
	var (
		entries, snap, reject, commit, ctx, logPos bool
	)
	switch m.Type {
	case MsgApp:
		entries, commit, logPos = true, true, true
	case MsgAppResp:
		reject, commit, logPos = true, true, true
	case MsgVote, MsgPreVote:
		ctx, logPos = true, true
	case MsgVoteResp, MsgPreVoteResp:
		reject = true
	case MsgHeartbeat, MsgHeartbeatResp:
		commit, ctx = true, true
	case MsgSnap:
		snap = true
	case MsgReadIndex:
		ctx = true
	case MsgReadIndexResp:
		ctx, logPos = true, true
	case MsgTransferLeader, MsgTimeoutNow:
	}
	switch {
	case !entries && len(m.Entries) > 0:
		return bad("carries %d entries", len(m.Entries))
	case !snap && !isZeroSnapshot(m.Snapshot):
		return bad("carries a snapshot")
	case !reject && m.Reject:
		return bad("carries a rejection")
	case !commit && m.Commit != 0:
		return bad("carries commit %d", m.Commit)
	case !ctx && len(m.Context) > 0:
		return bad("carries a context")
	case !logPos && (m.Index != 0 || m.LogTerm != 0):
		return bad("carries index %d / log term %d", m.Index, m.LogTerm)
	case m.RejectHint != 0 && !(m.Type == MsgAppResp && m.Reject):
		return bad("carries a reject hint")
	case (m.Recovering || m.Demoted) && m.Type != MsgAppResp && m.Type != MsgHeartbeatResp:
		return bad("carries a recovery state")
	case m.Type == MsgReadIndexResp && m.LogTerm != 0:
		return bad("carries log term %d", m.LogTerm)
	}

	switch m.Type {
	case MsgApp:
		return validateEntries(m, bad)
	case MsgAppResp:
		if m.Reject && m.RejectHint > m.Index {
			return bad("reject hint %d beyond the rejected index %d", m.RejectHint, m.Index)
		}
	case MsgSnap:
		s := m.Snapshot
		switch {
		case s.Index == 0 || s.Term == 0:
			return bad("snapshot %d/%d without index or term", s.Index, s.Term)
		case s.Term > m.Term:
			return bad("snapshot term %d above the message's term %d", s.Term, m.Term)
		}
		if err := validateConfState(s.Conf); err != nil {
			return bad("snapshot membership: %v", err)
		}
	}
	return nil
}

// validateEntries checks a MsgApp's entries against its Index and terms.
func validateEntries(m Message, bad func(string, ...any) error) error {
	if uint64(len(m.Entries)) > MaxIndex-m.Index {
		return bad("%d entries after index %d pass %d", len(m.Entries), m.Index, MaxIndex)
	}
	prevTerm := m.LogTerm
	for i, e := range m.Entries {
		want := m.Index + 1 + uint64(i)
		switch {
		case e.Index != want:
			return bad("entry %d has index %d, want %d (entries follow index %d one by one)", i, e.Index, want, m.Index)
		case e.Term < prevTerm:
			return bad("entry %d has term %d, below the term %d before it", e.Index, e.Term, prevTerm)
		case e.Term > m.Term:
			return bad("entry %d has term %d, above the message's term %d", e.Index, e.Term, m.Term)
		}
		prevTerm = e.Term
		if e.Type == EntryConfChange {
			if _, err := UnmarshalConfChange(e.Data); err != nil {
				return bad("entry %d: %v", e.Index, err)
			}
		}
	}
	return nil
}

// validateVoterList checks a membership: at most maxVoters distinct ids,
// none of them None. Empty is allowed (no membership recorded).
func validateVoterList(voters []uint64) error {
	if len(voters) > maxVoters {
		return fmt.Errorf("%d voters, at most %d", len(voters), maxVoters)
	}
	sorted := slices.Clone(voters)
	slices.Sort(sorted)
	for i, v := range sorted {
		if v == None {
			return fmt.Errorf("voter id %d is reserved", None)
		}
		if i > 0 && sorted[i-1] == v {
			return fmt.Errorf("voter %d listed twice", v)
		}
	}
	return nil
}

func isZeroSnapshot(s SnapshotMeta) bool {
	return s.Index == 0 && s.Term == 0 && s.Conf.IsEmpty()
}

// ValidateSender checks who sent m and to whom: the sender must be one of
// known (the nodes this one may hear from: the members it knows of, never
// a removed one) other than self, and m addressed to self. A node that is
// not known must never move this node's term or leader. (A snapshot's
// membership may differ from the one in force here: memberships change.)
func ValidateSender(m Message, self uint64, known []uint64) error {
	switch {
	case m.To != self:
		return fmt.Errorf("%w: %v from %d is addressed to %d, this is node %d", ErrInvalidMessage, m.Type, m.From, m.To, self)
	case m.From == self:
		return fmt.Errorf("%w: %v claims to come from this node (%d)", ErrInvalidMessage, m.Type, self)
	case !slices.Contains(known, m.From):
		return fmt.Errorf("%w: %v from %d, which is not a known member (%v)", ErrInvalidMessage, m.Type, m.From, known)
	}
	return nil
}
