package raftlog

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// noLimit is a byte bound that never binds.
const noLimit = math.MaxUint64

// raftLog is the core's view of the whole log: the persisted prefix read
// through Storage and the unstable suffix held in memory.
//
// Invariant: firstIndex()-1 <= applied <= committed <= lastIndex().
// Entries at or below committed are never overwritten.
type raftLog struct {
	storage  Storage
	unstable unstable

	// committed is the highest index known to be stored on a quorum.
	committed uint64
	// applied is the highest index the caller has applied (Advance).
	applied uint64
	// maxApplyBytes bounds the Data bytes of CommittedEntries in one Ready.
	maxApplyBytes uint64
}

func newLog(storage Storage, maxApplyBytes uint64) (*raftLog, error) {
	first, err := storage.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("storage first index: %w", err)
	}
	last, err := storage.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("storage last index: %w", err)
	}
	if maxApplyBytes == 0 {
		maxApplyBytes = noLimit
	}
	return &raftLog{
		storage:       storage,
		unstable:      unstable{offset: last + 1},
		committed:     first - 1,
		applied:       first - 1,
		maxApplyBytes: maxApplyBytes,
	}, nil
}

func (l *raftLog) String() string {
	return fmt.Sprintf("committed=%d applied=%d unstable.offset=%d len(unstable)=%d",
		l.committed, l.applied, l.unstable.offset, len(l.unstable.entries))
}

// mustStorage panics on a Storage error the core cannot handle: the log
// on disk is unreadable, and serving on would risk safety.
func mustStorage[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("raftlog: storage failed: %v", err))
	}
	return v
}

func (l *raftLog) firstIndex() uint64 {
	if i, ok := l.unstable.maybeFirstIndex(); ok {
		return i
	}
	return mustStorage(l.storage.FirstIndex())
}

func (l *raftLog) lastIndex() uint64 {
	if i, ok := l.unstable.maybeLastIndex(); ok {
		return i
	}
	return mustStorage(l.storage.LastIndex())
}

// persistedLastIndex is the last index the caller has made durable and the
// core has not since replaced.
func (l *raftLog) persistedLastIndex() uint64 {
	return min(mustStorage(l.storage.LastIndex()), l.unstable.offset-1)
}

// term returns the term of entry i; ErrCompacted below the first index - 1,
// ErrUnavailable past the last.
func (l *raftLog) term(i uint64) (uint64, error) {
	if i < l.firstIndex()-1 {
		return 0, ErrCompacted
	}
	if i > l.lastIndex() {
		return 0, ErrUnavailable
	}
	if t, ok := l.unstable.maybeTerm(i); ok {
		return t, nil
	}
	t, err := l.storage.Term(i)
	if err != nil && !errors.Is(err, ErrCompacted) && !errors.Is(err, ErrUnavailable) {
		panic(fmt.Sprintf("raftlog: storage term(%d): %v", i, err))
	}
	return t, err
}

// termOrZero is term(i) with 0 for an index the log does not hold.
func (l *raftLog) termOrZero(i uint64) uint64 {
	t, err := l.term(i)
	if err != nil {
		return 0
	}
	return t
}

func (l *raftLog) lastTerm() uint64 {
	t, err := l.term(l.lastIndex())
	if err != nil {
		panic(fmt.Sprintf("raftlog: term of last index %d: %v", l.lastIndex(), err))
	}
	return t
}

func (l *raftLog) matchTerm(i, term uint64) bool {
	t, err := l.term(i)
	return err == nil && t == term
}

// isUpToDate reports whether a log ending at (lastIndex, term) is at least
// as up to date as ours (Raft §5.4.1).
func (l *raftLog) isUpToDate(lastIndex, term uint64) bool {
	ours := l.lastTerm()
	return term > ours || (term == ours && lastIndex >= l.lastIndex())
}

// maybeAppend appends ents after entry (index, logTerm) if that entry
// matches, and learns commit. It returns the index of the last entry the
// message vouched for.
func (l *raftLog) maybeAppend(index, logTerm, commit uint64, ents []Entry) (uint64, bool) {
	if !l.matchTerm(index, logTerm) {
		return 0, false
	}
	lastNew := index + uint64(len(ents))
	if ci := l.findConflict(ents); ci != 0 {
		if ci <= l.committed {
			panic(fmt.Sprintf("raftlog: entry %d conflicts with committed entry (committed %d)", ci, l.committed))
		}
		l.append(ents[ci-(index+1):]...)
	}
	l.commitTo(min(commit, lastNew))
	return lastNew, true
}

// append adds ents to the unstable log, replacing any suffix from
// ents[0].Index on. It returns the new last index.
func (l *raftLog) append(ents ...Entry) uint64 {
	if len(ents) == 0 {
		return l.lastIndex()
	}
	if after := ents[0].Index - 1; after < l.committed {
		panic(fmt.Sprintf("raftlog: append after %d is below committed %d", after, l.committed))
	}
	l.unstable.truncateAndAppend(ents)
	return l.lastIndex()
}

// findConflict returns the index of the first entry of ents that is not in
// the log (new or with a different term), or 0 if all are present.
func (l *raftLog) findConflict(ents []Entry) uint64 {
	for _, e := range ents {
		if !l.matchTerm(e.Index, e.Term) {
			return e.Index
		}
	}
	return 0
}

// Terms never decrease along a log, so the two searches below are binary
// searches: a rejection costs O(log n) term lookups, not a walk.

// firstIndexOfTerm returns the first index of term t at or before i (which
// holds t), not going below floor.
func (l *raftLog) firstIndexOfTerm(i, t, floor uint64) uint64 {
	lo := max(floor, l.firstIndex())
	if i < lo {
		return i
	}
	k := sort.Search(int(i-lo), func(k int) bool { return l.termOrZero(lo+uint64(k)) >= t })
	return lo + uint64(k)
}

// lastIndexOfTerm returns the highest index <= i holding term t, or 0 if
// the log holds no entry of t at or below i.
func (l *raftLog) lastIndexOfTerm(i, t uint64) uint64 {
	lo := l.firstIndex()
	if i < lo {
		return 0
	}
	// k is the first offset whose term is above t.
	k := sort.Search(int(i-lo+1), func(k int) bool { return l.termOrZero(lo+uint64(k)) > t })
	if k == 0 {
		return 0
	}
	j := lo + uint64(k) - 1
	if l.termOrZero(j) != t {
		return 0
	}
	return j
}

func (l *raftLog) commitTo(i uint64) {
	if i <= l.committed {
		return
	}
	if i > l.lastIndex() {
		panic(fmt.Sprintf("raftlog: commit %d beyond last index %d", i, l.lastIndex()))
	}
	l.committed = i
}

// maybeCommit commits up to i if entry i belongs to term (Raft §5.4.2:
// only current-term entries are committed by counting replicas).
func (l *raftLog) maybeCommit(i, term uint64) bool {
	if i > l.committed && l.termOrZero(i) == term {
		l.commitTo(i)
		return true
	}
	return false
}

func (l *raftLog) appliedTo(i uint64) {
	if i == 0 {
		return
	}
	if i > l.committed || i < l.applied {
		panic(fmt.Sprintf("raftlog: applied %d out of range [%d, %d]", i, l.applied, l.committed))
	}
	l.applied = i
}

func (l *raftLog) stableTo(i, term uint64) { l.unstable.stableTo(i, term) }
func (l *raftLog) stableSnapTo(i uint64)   { l.unstable.stableSnapTo(i) }

// unstableEntries are the entries the caller must persist next.
func (l *raftLog) unstableEntries() []Entry { return l.unstable.entries }

// applicableLimit is the highest index that may be applied: committed and
// persisted. Nothing is applicable while a snapshot is pending.
func (l *raftLog) applicableLimit() uint64 {
	if l.unstable.snapshot != nil {
		return l.applied
	}
	return min(l.committed, l.persistedLastIndex())
}

func (l *raftLog) hasNextCommittedEnts() bool {
	return l.applicableLimit() > l.applied
}

// nextCommittedEnts are the committed, persisted entries not yet applied,
// bounded by maxApplyBytes (at least one entry).
func (l *raftLog) nextCommittedEnts() []Entry {
	hi := l.applicableLimit()
	if hi <= l.applied {
		return nil
	}
	ents, err := l.slice(l.applied+1, hi+1, l.maxApplyBytes)
	if err != nil {
		panic(fmt.Sprintf("raftlog: committed entries [%d,%d] unreadable: %v", l.applied+1, hi, err))
	}
	return ents
}

// entries returns entries from i on, at most maxBytes of Data (at least one).
func (l *raftLog) entries(i, maxBytes uint64) ([]Entry, error) {
	if i > l.lastIndex() {
		return nil, nil
	}
	return l.slice(i, l.lastIndex()+1, maxBytes)
}

// slice returns entries [lo, hi) from Storage and the unstable log, at most
// maxBytes of Data but at least one entry.
func (l *raftLog) slice(lo, hi, maxBytes uint64) ([]Entry, error) {
	if lo > hi {
		panic(fmt.Sprintf("raftlog: invalid slice %d > %d", lo, hi))
	}
	if lo < l.firstIndex() {
		return nil, ErrCompacted
	}
	if hi > l.lastIndex()+1 {
		panic(fmt.Sprintf("raftlog: slice[%d,%d) beyond last index %d", lo, hi, l.lastIndex()))
	}
	if lo == hi {
		return nil, nil
	}
	var ents []Entry
	if lo < l.unstable.offset {
		stored, err := l.storage.Entries(lo, min(hi, l.unstable.offset), maxBytes)
		if err != nil {
			if errors.Is(err, ErrCompacted) {
				return nil, err
			}
			panic(fmt.Sprintf("raftlog: storage entries[%d,%d): %v", lo, min(hi, l.unstable.offset), err))
		}
		if uint64(len(stored)) < min(hi, l.unstable.offset)-lo {
			// The byte limit cut it short. Storage counts Data only: weigh
			// each entry's overhead too, as for the unstable part.
			return limitSize(stored, maxBytes, EntryOverheadBytes), nil
		}
		ents = stored
	}
	if hi > l.unstable.offset {
		u := l.unstable.slice(max(lo, l.unstable.offset), hi)
		if len(ents) > 0 {
			// Copy: never append into Storage's slice.
			ents = append(append([]Entry(nil), ents...), u...)
		} else {
			ents = u
		}
	}
	return limitSize(ents, maxBytes, EntryOverheadBytes), nil
}

// EntryOverheadBytes is what one entry adds to an encoded message beyond
// its Data (index, term, type, length), at most. Byte limits on entries
// count it, so the encoded size of a MsgApp is bounded by its limit even
// when the entries are tiny.
const EntryOverheadBytes = 32

// limitSize keeps the longest prefix of ents whose Data, plus overhead
// bytes each, fits in maxBytes, and at least one entry.
func limitSize(ents []Entry, maxBytes, overhead uint64) []Entry {
	if len(ents) == 0 || maxBytes == noLimit {
		return ents
	}
	size := uint64(len(ents[0].Data)) + overhead
	n := 1
	for ; n < len(ents); n++ {
		size += uint64(len(ents[n].Data)) + overhead
		if size > maxBytes {
			break
		}
	}
	return ents[:n]
}

// messageSize is what ents weigh against a message byte limit: their Data
// plus EntryOverheadBytes each, as limitSize counts them.
func messageSize(ents []Entry) uint64 {
	return payloadSize(ents) + EntryOverheadBytes*uint64(len(ents))
}

// payloadSize is the Data bytes of ents.
func payloadSize(ents []Entry) uint64 {
	var s uint64
	for _, e := range ents {
		s += uint64(len(e.Data))
	}
	return s
}

// snapshot is the newest snapshot: the pending one, else Storage's.
func (l *raftLog) snapshot() (SnapshotMeta, error) {
	if l.unstable.snapshot != nil {
		return *l.unstable.snapshot, nil
	}
	return l.storage.Snapshot()
}

// restore resets the log to the snapshot s.
func (l *raftLog) restore(s SnapshotMeta) {
	l.committed = s.Index
	l.unstable.restore(s)
}
