package raftlog

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// ConfChangeType is one kind of membership change. Changes are one server
// at a time (Raft dissertation §4.1): a majority of the old configuration
// and a majority of the new one always overlap, so no joint phase is
// needed (docs/decisions.md, 21).
type ConfChangeType uint8

const (
	// ConfAddLearner adds a new member that receives the log but does not
	// vote. Every member starts so: adding a voter directly would raise the
	// quorum before it holds anything.
	ConfAddLearner ConfChangeType = 1
	// ConfPromote makes a learner a voter. A leader accepts it only when
	// the learner's match index is within Config.MaxPromoteLag of its last
	// index.
	ConfPromote ConfChangeType = 2
	// ConfRemove removes a voter or a learner. The last voter cannot be
	// removed.
	ConfRemove ConfChangeType = 3
	// ConfDemote makes a voter a learner. Only a leader proposes it, for a
	// voter that reports it is recovering (it lost its data), so that the
	// others can elect without its vote while it catches up; the leader
	// promotes it back once it has (docs/decisions.md, 25). The last voter
	// cannot be demoted.
	ConfDemote ConfChangeType = 4
)

func (t ConfChangeType) String() string {
	switch t {
	case ConfAddLearner:
		return "add-learner"
	case ConfPromote:
		return "promote"
	case ConfRemove:
		return "remove"
	case ConfDemote:
		return "demote"
	}
	return fmt.Sprintf("ConfChangeType(%d)", uint8(t))
}

// maxConfContextBytes bounds ConfChange.Context (the caller's addresses).
const maxConfContextBytes = 4 << 10

// ConfChange is the Data of an EntryConfChange. Context is the caller's
// (the broker puts the member's addresses there); the core only carries it.
// After is the whole membership once the change is made: the leader fills
// it in (a proposal's is ignored), so that a node that joins with no
// membership at all learns every member from the entry that adds it, and
// the membership in force is always the newest change entry's.
type ConfChange struct {
	Type    ConfChangeType
	ID      uint64
	Context []byte
	After   ConfState
}

const confChangeVersion byte = 1

// Marshal encodes cc: version byte, type byte, uvarint ID, uvarint
// len(Context), Context, then After's voters and learners (uvarint count,
// uvarint ids each).
func (cc ConfChange) Marshal() []byte {
	b := make([]byte, 0, 2+binary.MaxVarintLen64*(4+len(cc.After.Voters)+len(cc.After.Learners))+len(cc.Context))
	b = append(b, confChangeVersion, byte(cc.Type))
	b = binary.AppendUvarint(b, cc.ID)
	b = binary.AppendUvarint(b, uint64(len(cc.Context)))
	b = append(b, cc.Context...)
	for _, ids := range [][]uint64{cc.After.Voters, cc.After.Learners} {
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = binary.AppendUvarint(b, id)
		}
	}
	return b
}

// UnmarshalConfChange decodes what Marshal produced. Malformed input (an
// unknown version or type, id None, a context over 4 KiB, a membership
// that is invalid or does not show the change made, trailing bytes) is an
// error wrapping ErrCorruptMessage; it never panics.
func UnmarshalConfChange(b []byte) (ConfChange, error) {
	d := decoder{buf: b}
	cc, err := d.confChange()
	if err != nil {
		return ConfChange{}, fmt.Errorf("%w: conf change: %w", ErrCorruptMessage, err)
	}
	return cc, nil
}

func (d *decoder) confChange() (ConfChange, error) {
	var cc ConfChange
	v, err := d.byte()
	if err != nil {
		return cc, err
	}
	if v != confChangeVersion {
		return cc, fmt.Errorf("unknown version %d", v)
	}
	t, err := d.byte()
	if err != nil {
		return cc, err
	}
	cc.Type = ConfChangeType(t)
	switch cc.Type {
	case ConfAddLearner, ConfPromote, ConfRemove, ConfDemote:
	default:
		return cc, fmt.Errorf("unknown type %d", t)
	}
	if cc.ID, err = d.uvarint(); err != nil {
		return cc, err
	}
	if cc.ID == None {
		return cc, fmt.Errorf("node id %d is reserved", None)
	}
	if cc.Context, err = d.bytes(); err != nil {
		return cc, err
	}
	if len(cc.Context) > maxConfContextBytes {
		return cc, fmt.Errorf("context of %d bytes, at most %d", len(cc.Context), maxConfContextBytes)
	}
	if cc.After.Voters, err = d.ids(); err != nil {
		return cc, err
	}
	if cc.After.Learners, err = d.ids(); err != nil {
		return cc, err
	}
	if err := validateConfState(cc.After); err != nil {
		return cc, fmt.Errorf("membership after: %w", err)
	}
	if err := cc.madeIn(cc.After); err != nil {
		return cc, err
	}
	if d.remaining() != 0 {
		return cc, fmt.Errorf("%d trailing bytes", d.remaining())
	}
	return cc, nil
}

// IsVoter reports whether id votes in cs.
func (cs ConfState) IsVoter(id uint64) bool { return slices.Contains(cs.Voters, id) }

// IsLearner reports whether id is a learner in cs.
func (cs ConfState) IsLearner(id uint64) bool { return slices.Contains(cs.Learners, id) }

// IsMember reports whether id is a voter or a learner in cs.
func (cs ConfState) IsMember(id uint64) bool { return cs.IsVoter(id) || cs.IsLearner(id) }

// IsEmpty reports whether cs has no member at all (a node that waits to be
// added).
func (cs ConfState) IsEmpty() bool { return len(cs.Voters) == 0 && len(cs.Learners) == 0 }

// Clone returns a sorted deep copy of cs.
func (cs ConfState) Clone() ConfState {
	out := ConfState{Voters: slices.Clone(cs.Voters), Learners: slices.Clone(cs.Learners)}
	slices.Sort(out.Voters)
	slices.Sort(out.Learners)
	return out
}

// Equal reports whether a and b have the same members in the same roles.
func (cs ConfState) Equal(o ConfState) bool {
	a, b := cs.Clone(), o.Clone()
	return slices.Equal(a.Voters, b.Voters) && slices.Equal(a.Learners, b.Learners)
}

// Apply returns cs with cc applied, or an error wrapping ErrBadConfChange
// if cc does not make sense there: adding a member, promoting a
// non-learner, demoting a non-voter, removing a non-member, removing or
// demoting the last voter. cs is not changed.
func (cs ConfState) Apply(cc ConfChange) (ConfState, error) {
	bad := func(format string, args ...any) (ConfState, error) {
		return cs, fmt.Errorf("%w: %v %d: %s", ErrBadConfChange, cc.Type, cc.ID, fmt.Sprintf(format, args...))
	}
	switch cc.Type {
	case ConfAddLearner:
		if cc.ID == None {
			return bad("id %d is reserved", None)
		}
		if cs.IsMember(cc.ID) {
			return bad("already a member")
		}
		if len(cs.Voters)+len(cs.Learners) >= maxVoters {
			return bad("%d members already, at most %d", len(cs.Voters)+len(cs.Learners), maxVoters)
		}
	case ConfPromote:
		if !cs.IsLearner(cc.ID) {
			return bad("not a learner")
		}
	case ConfRemove:
		if !cs.IsMember(cc.ID) {
			return bad("not a member")
		}
		if cs.IsVoter(cc.ID) && len(cs.Voters) == 1 {
			return bad("the last voter")
		}
	case ConfDemote:
		if !cs.IsVoter(cc.ID) {
			return bad("not a voter")
		}
		if len(cs.Voters) == 1 {
			return bad("the last voter")
		}
	default:
		return bad("unknown change")
	}
	return cs.assign(cc), nil
}

// madeIn checks that the membership after shows cc made: a voter left.
func (cc ConfChange) madeIn(after ConfState) error {
	ok := len(after.Voters) > 0
	switch cc.Type {
	case ConfAddLearner, ConfDemote:
		ok = ok && after.IsLearner(cc.ID)
	case ConfPromote:
		ok = ok && after.IsVoter(cc.ID)
	case ConfRemove:
		ok = ok && !after.IsMember(cc.ID)
	}
	if !ok {
		return fmt.Errorf("membership after %v does not show %v %d", after, cc.Type, cc.ID)
	}
	return nil
}

// assign applies cc as an assignment of one member's role, with no checks.
func (cs ConfState) assign(cc ConfChange) ConfState {
	out := ConfState{
		Voters:   slices.DeleteFunc(slices.Clone(cs.Voters), func(id uint64) bool { return id == cc.ID }),
		Learners: slices.DeleteFunc(slices.Clone(cs.Learners), func(id uint64) bool { return id == cc.ID }),
	}
	switch cc.Type {
	case ConfAddLearner, ConfDemote:
		out.Learners = append(out.Learners, cc.ID)
	case ConfPromote:
		out.Voters = append(out.Voters, cc.ID)
	}
	return out.Clone()
}

// validateConfState checks a membership: at most maxVoters members in all,
// none of them None, no id twice (in a role or across them). Empty is
// allowed (no membership recorded).
func validateConfState(cs ConfState) error {
	all := append(slices.Clone(cs.Voters), cs.Learners...)
	if len(all) > maxVoters {
		return fmt.Errorf("%d members, at most %d", len(all), maxVoters)
	}
	return validateVoterList(all)
}
