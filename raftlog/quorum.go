package raftlog

import "slices"

// majority is a set of voters (sorted ids) and the quorum arithmetic over
// it: every place that asks "does a quorum agree?" asks it here, so that
// learners, and a leader removing itself, count nowhere by construction
// (etcd's quorum.MajorityConfig).
type majority []uint64

// quorum is the size of a majority. An empty set has no quorum.
func (m majority) quorum() int { return len(m)/2 + 1 }

// committedIndex is the highest index that a majority holds, given each
// voter's match index; 0 for an empty set.
func (m majority) committedIndex(match func(id uint64) uint64) uint64 {
	if len(m) == 0 {
		return 0
	}
	idx := make([]uint64, len(m))
	for i, id := range m {
		idx[i] = match(id)
	}
	slices.Sort(idx)
	return idx[len(idx)-m.quorum()]
}

// voteResult tallies votes (id -> granted); ids outside m do not count.
func (m majority) voteResult(votes map[uint64]bool) voteResult {
	if len(m) == 0 {
		return voteLost
	}
	yes, no := 0, 0
	for _, id := range m {
		v, ok := votes[id]
		switch {
		case !ok:
		case v:
			yes++
		default:
			no++
		}
	}
	switch q := m.quorum(); {
	case yes >= q:
		return voteWon
	case no > len(m)-q:
		return voteLost
	}
	return votePending
}

// agree reports whether a majority of m satisfies ok.
func (m majority) agree(ok func(id uint64) bool) bool {
	if len(m) == 0 {
		return false
	}
	n := 0
	for _, id := range m {
		if ok(id) {
			n++
		}
	}
	return n >= m.quorum()
}

// confAt is a configuration-change entry in the log and the membership it
// makes.
type confAt struct {
	index, term uint64
	conf        ConfState
}

// membership tracks the configuration in force on a node: the newest one
// in its log, committed or not (dissertation §4.1). base is the membership
// before the entries in log; log holds the change entries not yet known
// committed, oldest first.
type membership struct {
	base ConfState
	// baseIndex is the index of the newest change folded into base (or of
	// the snapshot it came from); change entries at or below it are old.
	baseIndex uint64
	log       []confAt
}

// current is the membership in force.
func (ms *membership) current() ConfState {
	if n := len(ms.log); n > 0 {
		return ms.log[n-1].conf
	}
	return ms.base
}

// lastIndex is the index of the newest change entry known, 0 if none is
// uncommitted.
func (ms *membership) lastIndex() uint64 {
	if n := len(ms.log); n > 0 {
		return ms.log[n-1].index
	}
	return 0
}

// compact folds the changes at or below committed into base: they can no
// longer be undone.
func (ms *membership) compact(committed uint64) {
	i := 0
	for i < len(ms.log) && ms.log[i].index <= committed {
		ms.base, ms.baseIndex = ms.log[i].conf, ms.log[i].index
		i++
	}
	ms.log = slices.Delete(ms.log, 0, i)
}
