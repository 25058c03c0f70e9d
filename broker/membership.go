package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/storage"
)

// ErrRemoved is returned by Run when a membership change removed this node
// from its cluster, and by New when its data directory says so: the node
// stops, and its data may not come back under its id.
var ErrRemoved = errors.New("broker: this node was removed from the cluster")

// memberTimeout bounds how long a member request waits for its change to
// commit.
const memberTimeout = 10 * time.Second

// addressBook is every node this one knows an address for, by raft id:
// the members recorded by membership changes, then the cluster file, which
// wins for the ids it lists (at start a node takes only addresses from the
// file). Removed ids are left out.
func addressBook(file config.Cluster, m storage.Members) map[uint64]config.Address {
	book := make(map[uint64]config.Address, len(file.Addresses)+len(m.Addrs))
	for id, a := range m.Addrs {
		book[id] = config.Address{IP: a.IP, Port: a.Port, InternalPort: a.InternalPort, ID: nodeIndex(id)}
	}
	for i, a := range file.Addresses {
		book[raftID(file.NodeID(i))] = a
	}
	for _, id := range m.Removed {
		delete(book, id)
	}
	return book
}

// removedBook is the peer addresses of removed nodes this one knows (from
// their changes, or the cluster file): they are told they were removed
// when they send.
func removedBook(file config.Cluster, m storage.Members) map[uint64]string {
	out := map[uint64]string{}
	for _, id := range m.Removed {
		if a, ok := m.Addrs[id]; ok {
			out[id] = config.Address{IP: a.IP, Port: a.Port, InternalPort: a.InternalPort}.PeerAddr()
		}
		if i, ok := file.Index(nodeIndex(id)); ok {
			out[id] = file.Addresses[i].PeerAddr()
		}
	}
	return out
}

func memberAddr(a config.Address) storage.MemberAddr {
	return storage.MemberAddr{IP: a.IP, Port: a.Port, InternalPort: a.InternalPort}
}

// peerMap is the transport's view of book: peer addresses, self excluded.
func peerMap(book map[uint64]config.Address, self uint64) map[uint64]string {
	peers := make(map[uint64]string, len(book))
	for id, a := range book {
		if id != self {
			peers[id] = a.PeerAddr()
		}
	}
	return peers
}

// decodeChange reads a change entry and the addresses it carries (an add).
func decodeChange(e raftlog.Entry) (raftlog.ConfChange, *storage.MemberAddr, error) {
	cc, err := raftlog.UnmarshalConfChange(e.Data)
	if err != nil {
		return cc, nil, err
	}
	if len(cc.Context) == 0 {
		return cc, nil, nil
	}
	var a storage.MemberAddr
	if err := json.Unmarshal(cc.Context, &a); err != nil {
		return cc, nil, fmt.Errorf("change %d: addresses: %w", e.Index, err)
	}
	return cc, &a, nil
}

// noteAppendedChanges learns the addresses of members added by change
// entries as soon as they are in the log: a change is in force when
// appended, and the leader sends to a new learner in the same Ready.
func (n *node) noteAppendedChanges(ents []raftlog.Entry) {
	changed := false
	for _, e := range ents {
		if e.Type != raftlog.EntryConfChange {
			continue
		}
		cc, addr, err := decodeChange(e)
		if err != nil || cc.Type != raftlog.ConfAddLearner || addr == nil {
			continue
		}
		if _, known := n.addrs[cc.ID]; known || slices.Contains(n.members.Removed, cc.ID) {
			continue
		}
		n.addrs[cc.ID] = config.Address{IP: addr.IP, Port: addr.Port, InternalPort: addr.InternalPort, ID: nodeIndex(cc.ID)}
		changed = true
	}
	if changed {
		n.addressesChanged()
	}
}

func (n *node) addressesChanged() {
	removed := map[uint64]string{}
	for _, id := range n.members.Removed {
		if a, ok := n.members.Addrs[id]; ok {
			removed[id] = config.Address{IP: a.IP, Port: a.Port, InternalPort: a.InternalPort}.PeerAddr()
		}
	}
	n.trans.SetPeers(peerMap(n.addrs, n.self), removed)
	clients := make(map[uint64]string, len(n.addrs))
	for id, a := range n.addrs {
		clients[id] = a.ClientAddr()
	}
	n.clientAddrs = clients
}

// applyChanges records the committed change entries among ents in raft.db
// (membership, addresses, removed ids), before state.db applies them. A
// change that removes this node stops it.
func (n *node) applyChanges(ents []raftlog.Entry) error {
	for _, e := range ents {
		if e.Type != raftlog.EntryConfChange || e.Index <= n.members.Index {
			continue
		}
		cc, addr, err := decodeChange(e)
		if err != nil {
			return fmt.Errorf("%w: committed change entry %d: %w", ErrStopped, e.Index, err)
		}
		m := n.members
		m.Addrs = make(map[uint64]storage.MemberAddr, len(n.members.Addrs)+1)
		for id, a := range n.members.Addrs {
			m.Addrs[id] = a
		}
		m.Removed = slices.Clone(n.members.Removed)
		m.Index = e.Index
		switch cc.Type {
		case raftlog.ConfAddLearner:
			if addr != nil {
				m.Addrs[cc.ID] = *addr
			}
		case raftlog.ConfRemove:
			// The address stays: the node is told it was removed when it
			// sends (transport.SetPeers).
			if a, ok := n.addrs[cc.ID]; ok {
				m.Addrs[cc.ID] = memberAddr(a)
			}
			if !slices.Contains(m.Removed, cc.ID) {
				m.Removed = append(m.Removed, cc.ID)
			}
		}
		if n.job != nil {
			n.cancelSnapshot() // it would carry the membership before this change
		}
		if err := n.raft.SetMembers(m, cc.After); err != nil {
			return fmt.Errorf("%w: record membership change %d: %w", ErrStopped, e.Index, err)
		}
		n.members = m
		n.log.Info().Uint64("index", e.Index).Str("change", cc.Type.String()).Int("member", nodeIndex(cc.ID)).
			Ints("voters", indexes(cc.After.Voters)).Ints("learners", indexes(cc.After.Learners)).Msg("membership changed")
		n.answerMember(e.Index, cc)
		if cc.Type == raftlog.ConfRemove {
			delete(n.addrs, cc.ID)
			n.addressesChanged()
			if cc.ID != n.self {
				// Tell it now: a learner, or a node that is not campaigning,
				// might otherwise never send again and never learn it.
				n.trans.SendFrame(cc.ID, appendEnvelope(nil, n.clusterID, n.self, frameRemoved))
			}
			if cc.ID == n.self {
				n.log.Error().Uint64("index", e.Index).Msg("this node was removed from the cluster; it stops. " +
					"Its data directory may not be used again: to bring this machine back, wipe the data directory and add it with a new id")
				return fmt.Errorf("%w (membership change at index %d); its data directory may not be used again: wipe it and add this machine with a new id",
					ErrRemoved, e.Index)
			}
		}
	}
	return nil
}

// adoptMembers makes m (recorded in raft.db by the caller: an installed
// snapshot's members record) the node's: the transport learns every
// member's addresses (the cluster file still wins for the ids it lists),
// removed ids are dropped and refused, and a node that m says was removed
// stops.
func (n *node) adoptMembers(m storage.Members) error {
	n.members = m
	for id, a := range m.Addrs {
		if _, known := n.addrs[id]; !known {
			n.addrs[id] = config.Address{IP: a.IP, Port: a.Port, InternalPort: a.InternalPort, ID: nodeIndex(id)}
		}
	}
	for _, id := range m.Removed {
		delete(n.addrs, id)
	}
	n.addressesChanged()
	if slices.Contains(m.Removed, n.self) {
		n.log.Error().Msg("the installed snapshot says this node was removed from the cluster; it stops. " +
			"To bring this machine back, wipe the data directory and add it with a new id")
		return fmt.Errorf("%w (the installed snapshot at index %d says so); its data directory may not be used again: wipe it and add this machine with a new id",
			ErrRemoved, m.Index)
	}
	return nil
}

func indexes(ids []uint64) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = nodeIndex(id)
	}
	return out
}

// pendingMember is the one member request a leader has proposed and not
// yet seen commit.
type pendingMember struct {
	route    replyTo
	index    uint64
	change   raftlog.ConfChange
	deadline time.Time
}

// handleMember serves a member request on the leader: GET lists the
// members, PUT adds a learner or promotes one, DELETE removes a member.
// A change is answered once committed.
func (n *node) handleMember(cr clientRequest) {
	if n.core.Role() != raftlog.RoleLeader {
		n.answerNotLeader(cr.route)
		return
	}
	req := cr.req
	if req.Method == wire.MethodGet {
		members := n.memberList()
		n.reply.send(cr.route, wire.Response{Success: true, Members: &members})
		return
	}
	id := raftID(req.Member.ID)
	if req.Method == wire.MethodDelete && slices.Contains(n.members.Removed, id) {
		// Removed already (the record is written when the removal is
		// applied, so committed): a client whose answer was lost, say
		// because the leader it asked removed itself, retries here and must
		// hear that it is done, not that the node is no member.
		n.reply.send(cr.route, wire.OK())
		return
	}
	if _, applied, _ := n.raft.InitialState(); req.Method == wire.MethodPut && req.Member.Role == wire.RoleVoter && applied.IsVoter(id) {
		// A voter already, committed and applied: the leader promoted it
		// itself (a demoted node that caught up, decision 25), or an
		// earlier answer was lost.
		n.reply.send(cr.route, wire.OK())
		return
	}
	if n.member != nil {
		n.reply.send(cr.route, wire.ErrorResponse(wire.ErrMemberRefused, "another membership change is in progress; retry when it is done"))
		return
	}
	cc := raftlog.ConfChange{ID: id}
	switch {
	case req.Method == wire.MethodDelete:
		cc.Type = raftlog.ConfRemove
	case req.Member.Role == wire.RoleVoter:
		cc.Type = raftlog.ConfPromote
	default:
		cc.Type = raftlog.ConfAddLearner
		if slices.Contains(n.members.Removed, id) {
			n.reply.send(cr.route, wire.ErrorResponse(wire.ErrMemberRefused,
				fmt.Sprintf("node %d was removed from this cluster; a removed id never comes back (its old data could rejoin): add the machine with a new id", req.Member.ID)))
			return
		}
		a := config.Address{IP: req.Member.IP, Port: req.Member.Port, InternalPort: req.Member.InternalPort}
		ctx, err := json.Marshal(memberAddr(a))
		if err != nil {
			n.reply.send(cr.route, wire.ErrorResponse(wire.ErrInternal, err.Error()))
			return
		}
		cc.Context = ctx
	}
	if err := n.core.ProposeConfChange(cc); err != nil {
		code := wire.ErrMemberRefused
		if errors.Is(err, raftlog.ErrProposalDropped) {
			code = wire.ErrNotLeader
		}
		n.reply.send(cr.route, wire.ErrorResponse(code, err.Error()))
		return
	}
	last := n.core.Status().LastIndex
	n.member = &pendingMember{route: cr.route, index: last, change: cc, deadline: time.Now().Add(memberTimeout)}
}

// answerMember answers the pending member request when its change is
// applied at its index.
func (n *node) answerMember(index uint64, cc raftlog.ConfChange) {
	p := n.member
	if p == nil || index != p.index || cc.Type != p.change.Type || cc.ID != p.change.ID {
		return
	}
	n.member = nil
	n.reply.send(p.route, wire.OK())
}

// expireMember answers a member request that did not commit in time, or
// whose index was applied without it (leadership lost).
func (n *node) expireMember(now time.Time, applied uint64) {
	p := n.member
	if p == nil {
		return
	}
	switch {
	case applied >= p.index:
		// The index was applied by another entry: the change was lost with
		// a leader change (applyChanges answers the change itself).
		n.reply.send(p.route, wire.ErrorResponse(wire.ErrNotLeader, "leadership changed before the membership change committed; it was not made: retry"))
	case now.After(p.deadline):
		n.reply.send(p.route, wire.ErrorResponse(wire.ErrTimeout, "the membership change did not commit in time; its outcome is unknown: list the members"))
	default:
		return
	}
	n.member = nil
}

// removedBy stops this node: member from says it was removed.
func (n *node) removedBy(from uint64) error {
	// Recorded, so that this data never rejoins under this id. (A frame
	// that passes the cluster id and, with CURVE, the peer's key is
	// trusted for this as for Raft traffic.)
	m := n.members
	m.Removed = append(slices.Clone(m.Removed), n.self)
	if _, cs, err := n.raft.InitialState(); err == nil {
		if err := n.raft.SetMembers(m, cs); err != nil {
			n.log.Error().Err(err).Msg("cannot record the removal")
		}
	}
	n.log.Error().Int("by", nodeIndex(from)).Msg("a member says this node was removed from the cluster; it stops. " +
		"To bring this machine back, wipe the data directory and add it with a new id")
	return fmt.Errorf("%w (as node %d says); to bring this machine back, wipe its data directory and add it with a new id", ErrRemoved, nodeIndex(from))
}

// memberList is the leader's view of the membership: every voter and
// learner with its addresses, match index and lag behind the last index.
func (n *node) memberList() []wire.Member {
	st := n.core.Status()
	var out []wire.Member
	add := func(id uint64, role string) {
		a := n.addrs[id]
		m := wire.Member{ID: nodeIndex(id), IP: a.IP, Port: a.Port, InternalPort: a.InternalPort, Role: role}
		if pr, ok := st.Progress[id]; ok {
			m.MatchIndex = pr.Match
			if id == n.self {
				m.MatchIndex = st.LastIndex
			}
			m.Lag = st.LastIndex - min(m.MatchIndex, st.LastIndex)
		}
		out = append(out, m)
	}
	for _, id := range st.Conf.Voters {
		add(id, wire.RoleVoter)
	}
	for _, id := range st.Conf.Learners {
		add(id, wire.RoleLearner)
	}
	slices.SortFunc(out, func(a, b wire.Member) int { return a.ID - b.ID })
	return out
}
