package broker

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/testwait"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/storage"
)

func changeEntry(t *testing.T, index uint64, cc raftlog.ConfChange, addr *storage.MemberAddr) raftlog.Entry {
	t.Helper()
	if addr != nil {
		b, err := json.Marshal(addr)
		if err != nil {
			t.Fatal(err)
		}
		cc.Context = b
	}
	return raftlog.Entry{Index: index, Term: 2, Type: raftlog.EntryConfChange, Data: cc.Marshal()}
}

// TestApplyChangesRecordsMembership runs the raft loop's recording of
// committed membership changes (decision 22) over the twins of raft.db
// and the peer network, no bbolt and no ZeroMQ: an added learner's
// addresses and a removed node's id (its address kept) are recorded with
// the membership in one write; the removed node is told at once and its
// frames are refused from then on; entries already recorded are skipped;
// a change that removes this node is recorded before the node stops.
func TestApplyChangesRecordsMembership(t *testing.T) {
	const seed = 27
	nw := newMemNetwork("twins", seed)
	addr := func(i int) config.Address {
		return config.Address{IP: "10.0.0.1", Port: 7000 + i, InternalPort: 8000 + i, ID: i}
	}
	book := map[uint64]config.Address{1: addr(0), 2: addr(1), 3: addr(2)}
	tr1, _ := nw.transportFor(1)(peerMap(book, 1))
	tr3, _ := nw.transportFor(3)(peerMap(book, 3))
	defer tr1.Close()
	defer tr3.Close()
	logs := newMemLogStore()
	if err := logs.SetMembers(storage.Members{}, raftlog.ConfState{Voters: []uint64{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	n := &node{log: zerolog.Nop(), raft: logs, trans: tr1, self: 1, addrs: maps.Clone(book), clusterID: "twins"}

	learner := storage.MemberAddr{IP: "10.0.0.4", Port: 7003, InternalPort: 8003}
	afterAdd := raftlog.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	afterRemove := raftlog.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{4}}
	ents := []raftlog.Entry{
		changeEntry(t, 5, raftlog.ConfChange{Type: raftlog.ConfAddLearner, ID: 4, After: afterAdd}, &learner),
		{Index: 6, Term: 2, Type: raftlog.EntryNormal, Data: []byte("not a change")},
		changeEntry(t, 7, raftlog.ConfChange{Type: raftlog.ConfRemove, ID: 3, After: afterRemove}, nil),
	}
	if err := n.applyChanges(ents); err != nil {
		t.Fatalf("applyChanges: %v", err)
	}
	want := storage.Members{Addrs: map[uint64]storage.MemberAddr{4: learner, 3: memberAddr(addr(2))}, Removed: []uint64{3}, Index: 7}
	if got := logs.Members(); !reflect.DeepEqual(got, want) {
		t.Fatalf("recorded members %+v, want %+v", got, want)
	}
	if _, cs, _ := logs.InitialState(); !reflect.DeepEqual(cs, afterRemove) {
		t.Fatalf("recorded membership %+v, want %+v", cs, afterRemove)
	}
	if _, ok := n.addrs[3]; ok {
		t.Fatalf("removed node 3 is still in the address book: %v", n.addrs)
	}
	select {
	case from := <-tr3.Removed():
		if from != 1 {
			t.Fatalf("node 3 was told it was removed by %d, want 1", from)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("seed %d: node 3 was never told it was removed", seed)
	}
	// From now on node 1 refuses node 3's frames.
	tr3.Send([]raftlog.Message{{Type: raftlog.MsgHeartbeatResp, From: 3, To: 1, Term: 2}})
	testwait.For(t, 10*time.Second, "node 1 to refuse a frame from removed node 3", func() bool { return nw.refused.Load() > 0 })
	if len(tr1.Recv()) != 0 {
		t.Fatalf("a removed node's message reached node 1's loop")
	}

	// Entries at or below the recorded index are not recorded again.
	if err := n.applyChanges(ents); err != nil {
		t.Fatalf("applyChanges again: %v", err)
	}
	if got := logs.Members(); !reflect.DeepEqual(got, want) {
		t.Fatalf("re-applying changed the record to %+v", got)
	}

	removeSelf := changeEntry(t, 8, raftlog.ConfChange{Type: raftlog.ConfRemove, ID: 1, After: raftlog.ConfState{Voters: []uint64{2}, Learners: []uint64{4}}}, nil)
	if err := n.applyChanges([]raftlog.Entry{removeSelf}); !errors.Is(err, ErrRemoved) {
		t.Fatalf("a change removing this node returned %v, want ErrRemoved", err)
	}
	if got := logs.Members(); got.Index != 8 || !reflect.DeepEqual(got.Removed, []uint64{3, 1}) {
		t.Fatalf("the removal of this node was not recorded before it stopped: %+v", got)
	}
}
