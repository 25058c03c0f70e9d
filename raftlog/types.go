// Package raftlog is raftmq's consensus core: a pure Raft state machine.
//
// The core advances only through Step, Tick and the local calls (Propose,
// Campaign, ReadIndex, TransferLeadership). It owns no goroutine, clock,
// socket or file. Work leaves it as a Ready batch that the caller must
// handle in this order:
//
//  0. send Ready.SendBeforePersist() (optional: a leader's appends and
//     heartbeats, which may leave before its own write);
//  1. persist, in one durable write (fsync): Snapshot if set (the storage
//     is reset to it), then HardState and Entries. The snapshot must come
//     first: one Ready can carry a snapshot at index i and entries from i+1
//     on, which would leave a gap in a log that still ends below i;
//  2. send Ready.SendAfterPersist() (all of Messages if step 0 was skipped);
//  3. apply CommittedEntries (after installing the snapshot's state);
//  4. call Advance(rd).
//
// The caller owns the Ready and the slices in it until Advance returns;
// the core does not mutate them afterwards.
package raftlog

// None is the node id meaning "no node" (no vote, no known leader).
const None uint64 = 0

// Role is a node's role in the current term.
type Role uint8

const (
	RoleFollower Role = iota
	RolePreCandidate
	RoleCandidate
	RoleLeader
)

// String returns the name the client protocol uses ("Leader", ...).
// A pre-candidate reports itself as "Candidate".
func (r Role) String() string {
	switch r {
	case RoleFollower:
		return "Follower"
	case RolePreCandidate, RoleCandidate:
		return "Candidate"
	case RoleLeader:
		return "Leader"
	}
	return "Unknown"
}

// EntryType says how an entry's Data is to be read.
type EntryType uint8

const (
	// EntryNormal carries an opaque command for the state machine.
	EntryNormal EntryType = 1
	// EntryNoop is the empty entry a new leader appends at the start of its
	// term (Raft §5.4.2, §8); Data is empty.
	EntryNoop EntryType = 2
	// EntryConfChange carries one membership change (ConfChange.Marshal).
	// It takes effect on every node as soon as it is in the node's log,
	// committed or not (Raft dissertation §4.1), and is undone if the entry
	// is overwritten.
	EntryConfChange EntryType = 3
)

// Entry is one log entry.
type Entry struct {
	Index uint64
	Term  uint64
	Type  EntryType
	Data  []byte
}

// HardState is the state a node must persist (fsync) before it sends any
// message that depends on it: the current term, the vote cast in it, and the
// highest commit index it knows (Commit is an optimisation; losing it is
// safe).
type HardState struct {
	Term   uint64
	Vote   uint64
	Commit uint64
}

// IsEmpty reports whether h is the zero HardState.
func (h HardState) IsEmpty() bool { return h == HardState{} }

// ConfState is the cluster membership: the ids of the voting nodes and of
// the learners (members that receive the log but neither vote nor count
// toward any quorum). An id is in at most one of the two.
type ConfState struct {
	Voters   []uint64
	Learners []uint64
}

// SnapshotMeta describes a snapshot: the last log entry it includes and the
// membership at that point. The bytes of a snapshot never pass through the
// core; the caller moves them (see package snapshot).
type SnapshotMeta struct {
	Index uint64
	Term  uint64
	Conf  ConfState
}

// IsEmpty reports whether s describes no snapshot.
func (s SnapshotMeta) IsEmpty() bool { return s.Index == 0 }

// MessageType names a Raft message. Local types are never sent over the
// network; they are how the caller's calls enter Step.
type MessageType uint8

const (
	MsgHup            MessageType = 1  // local: start an election now
	MsgBeat           MessageType = 2  // local: leader sends heartbeats now
	MsgProp           MessageType = 3  // local: propose entries
	MsgApp            MessageType = 4  // AppendEntries
	MsgAppResp        MessageType = 5  // AppendEntries response
	MsgVote           MessageType = 6  // RequestVote
	MsgVoteResp       MessageType = 7  // RequestVote response
	MsgPreVote        MessageType = 8  // PreVote (Raft thesis §9.6)
	MsgPreVoteResp    MessageType = 9  // PreVote response
	MsgHeartbeat      MessageType = 10 // heartbeat (carries commit and read-index context)
	MsgHeartbeatResp  MessageType = 11 // heartbeat response
	MsgSnap           MessageType = 12 // InstallSnapshot (meta only; bytes go out of band)
	MsgSnapStatus     MessageType = 13 // local: the caller reports a snapshot send finished or failed
	MsgUnreachable    MessageType = 14 // local: the caller reports a peer unreachable
	MsgTransferLeader MessageType = 15 // local or forwarded: transfer leadership to Message.From
	MsgTimeoutNow     MessageType = 16 // leader tells the transferee to campaign now
	MsgReadIndex      MessageType = 17 // local or forwarded: request a read index for Context
	MsgReadIndexResp  MessageType = 18 // leader answers a forwarded read index
)

var msgTypeNames = map[MessageType]string{
	MsgHup: "MsgHup", MsgBeat: "MsgBeat", MsgProp: "MsgProp", MsgApp: "MsgApp",
	MsgAppResp: "MsgAppResp", MsgVote: "MsgVote", MsgVoteResp: "MsgVoteResp",
	MsgPreVote: "MsgPreVote", MsgPreVoteResp: "MsgPreVoteResp",
	MsgHeartbeat: "MsgHeartbeat", MsgHeartbeatResp: "MsgHeartbeatResp",
	MsgSnap: "MsgSnap", MsgSnapStatus: "MsgSnapStatus", MsgUnreachable: "MsgUnreachable",
	MsgTransferLeader: "MsgTransferLeader", MsgTimeoutNow: "MsgTimeoutNow",
	MsgReadIndex: "MsgReadIndex", MsgReadIndexResp: "MsgReadIndexResp",
}

func (t MessageType) String() string {
	if s, ok := msgTypeNames[t]; ok {
		return s
	}
	return "MsgUnknown"
}

// IsLocal reports whether t is only ever produced by the local caller.
func (t MessageType) IsLocal() bool {
	switch t {
	case MsgHup, MsgBeat, MsgProp, MsgSnapStatus, MsgUnreachable:
		return true
	}
	return false
}

// Message is one Raft message between nodes, or a local input to Step.
type Message struct {
	Type MessageType
	To   uint64
	From uint64
	Term uint64

	// LogTerm and Index: for MsgApp, the entry preceding Entries; for
	// MsgVote/MsgPreVote, the candidate's last entry; for a successful
	// MsgAppResp, Index is the highest index known to match; for a rejected
	// MsgAppResp, Index is the rejected MsgApp's Index, and RejectHint and
	// LogTerm carry the fast back-off hint (the follower's conflicting term and
	// the first index it holds for that term, or its last index).
	LogTerm uint64
	Index   uint64

	Entries []Entry
	Commit  uint64

	Reject     bool
	RejectHint uint64

	// Recovering and Demoted (MsgAppResp and MsgHeartbeatResp only) tell
	// the leader about a follower that lost its data (docs/decisions.md,
	// 8 and 25). Recovering: the sender is in recovering mode and has not
	// yet caught up (it neither votes nor campaigns); a leader makes such
	// a voter a learner (ConfDemote) when the other voters can do without
	// it. Demoted: the sender is a learner only because it was demoted
	// while recovering; a leader promotes it back once it has caught up.
	Recovering bool
	Demoted    bool

	// Context is an opaque caller value echoed back: read-index request ids
	// (MsgReadIndex, MsgHeartbeat, MsgReadIndexResp) and campaign kind.
	Context []byte

	// Snapshot describes the snapshot a MsgSnap installs.
	Snapshot SnapshotMeta
}

// ReadState answers a ReadIndex request: once the node's applied index
// reaches Index, a read of state reflects every write acknowledged before the
// request was made (Raft thesis §6.4).
type ReadState struct {
	Index   uint64
	Context []byte
}

// SoftState is volatile state that callers want to observe.
type SoftState struct {
	Lead uint64
	Role Role
	// Recovering: the node started with Config.Recovering (or noticed it
	// lost its data, or was demoted to learner while recovering) and has
	// not yet caught up and, if it was demoted, been promoted back to voter
	// (docs/decisions.md, 25). A SoftState with it false after true tells
	// the caller to clear its persisted recovering flag; true after false,
	// to set it.
	Recovering bool
}

// Ready is a batch of work the caller must do, in the order documented in
// the package comment.
//
// Messages is split in two. SendBeforePersist may leave at once, before
// the write: a leader's MsgApp and MsgHeartbeat in a term that is already
// durable (the leader writes in parallel with replication, Raft
// dissertation §10.2.1; the leader counts its own entries toward commit
// only once Advance reports them durable). SendAfterPersist must wait until
// HardState and Entries are durable: votes, vote requests, append
// responses, and anything carrying a term not yet durable. A caller that
// sends all of Messages after the write is correct too, only slower.
type Ready struct {
	// SoftState is non-nil when the leader or role changed.
	SoftState *SoftState
	// HardState is non-empty when term, vote or commit changed; persist it.
	HardState HardState
	// Entries are new or overwriting log entries to persist, in one write
	// with HardState, before any of Messages is sent. An entry whose index is
	// at or below the persisted last index replaces it and every entry after it.
	Entries []Entry
	// Snapshot, when not empty, is a snapshot to install (its bytes were
	// received out of band): persist it before Entries, which may start
	// right after it, and install its state before applying
	// CommittedEntries.
	Snapshot SnapshotMeta
	// CommittedEntries are entries to apply, in order. They have been
	// persisted (by this or an earlier Ready).
	CommittedEntries []Entry
	// Messages are to be sent: SendBeforePersist() first (it may go before
	// the write), then SendAfterPersist() (after Entries and HardState are
	// durable).
	Messages []Message
	early    int // Messages[:early] may leave before the write
	// ReadStates are completed read-index requests.
	ReadStates []ReadState
	// MustSync is true when HardState.Term/Vote or Entries changed: the
	// write must be fsynced before Messages go out.
	MustSync bool
}

// SendBeforePersist is the part of Messages that may leave before
// HardState and Entries are durable.
func (rd *Ready) SendBeforePersist() []Message { return rd.Messages[:rd.early] }

// SendAfterPersist is the part of Messages that must wait until HardState
// and Entries are durable.
func (rd *Ready) SendAfterPersist() []Message { return rd.Messages[rd.early:] }

// Status is a snapshot of a node's state for reporting.
type Status struct {
	ID        uint64
	Role      Role
	Term      uint64
	Vote      uint64
	Lead      uint64
	Commit    uint64
	Applied   uint64
	LastIndex uint64
	// Recovering: see SoftState.Recovering.
	Recovering bool
	// Conf is the membership in force (the newest in the log).
	Conf ConfState
	// LeaderActive: as far as this node can tell, it knows a leader that
	// holds a quorum. A leader heard from a quorum (itself included) within
	// the last election timeout; a follower heard from its leader within
	// it.
	LeaderActive bool
	// Progress is set on a leader: each member's match and next index.
	Progress map[uint64]PeerProgress
}

// PeerProgress is a leader's view of one follower.
type PeerProgress struct {
	Match uint64
	Next  uint64
	// RecentActive: the leader heard from this peer within the last
	// election timeout (always true for the leader itself). CheckQuorum
	// counts the same peers.
	RecentActive bool
	// Learner: the member receives the log but does not vote.
	Learner bool
}
