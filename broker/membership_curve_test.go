package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/internal/testwait"
)

// TestMembershipAddUnderCurve: with CURVE on, a new member's key must be in
// every member's cluster file, which a member reads at start (decision 20:
// the peer port admits the cluster file's keys, and a member dials a peer
// with the key the file gives it). The operator's path: write the file
// with the new node's address and key, restart the members one at a time
// with it (their recorded membership wins, the file only adds addresses
// and keys), start the new node with --join, add and promote it. Then an
// original member is lost and the new one must serve: every message is
// still there, through a CURVE client.
func TestMembershipAddUnderCurve(t *testing.T) {
	clientKey := newKeyPair(t)
	all, _ := curveCluster(t, 4, config.CurveClients{Keys: []string{clientKey.public}})
	for i := range all {
		all[i].Cluster.ClusterID = "membership-curve-test"
	}
	nodes := map[int]*running{}
	for i := range 3 {
		cfg := all[i]
		cfg.Cluster.Addresses = all[i].Cluster.Addresses[:3]
		nodes[i] = startBroker(t, cfg)
	}
	// curveClient's, with time for an election under load: the client
	// retries with its session, so a retried put or pop applies once.
	var servers []string
	serverKeys := map[string]string{}
	for _, a := range all[0].Cluster.Addresses {
		servers = append(servers, a.ClientAddr())
		serverKeys[a.ClientAddr()] = a.CurvePublic
	}
	cl, err := client.New(client.Options{Servers: servers, Timeout: 20 * time.Second, AttemptTimeout: 2 * time.Second,
		ConnectTimeout: time.Second, Curve: &client.Curve{PublicKey: clientKey.public, SecretKey: clientKey.secret, ServerKeys: serverKeys}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	ctx := context.Background()
	if ok, err := cl.CreateTopic(ctx, "q"); err != nil || !ok {
		t.Fatalf("create topic: %v %v", ok, err)
	}
	const msgs = 50
	put := func(lo, hi int) {
		t.Helper()
		for i := lo; i < hi; i++ {
			if ok, err := cl.Put(ctx, "q", fmt.Sprintf("m%02d", i)); err != nil || !ok {
				t.Fatalf("put %d: %v %v", i, ok, err)
			}
		}
	}
	put(0, msgs/2)

	// The members learn node 3's address and key: a rolling restart.
	for i := range 3 {
		nodes[i].stop(t)
		nodes[i] = startBroker(t, all[i])
		put(msgs/2+i, msgs/2+i+1)
	}
	extra := all[3]
	extra.Join = true
	nodes[3] = startBroker(t, extra)
	a := extra.Self()
	if err := cl.AddLearner(ctx, wire.MemberSpec{ID: 3, IP: a.IP, Port: a.Port, InternalPort: a.InternalPort}); err != nil {
		t.Fatal(err)
	}
	role := func(id int) (string, uint64) {
		t.Helper()
		ms, err := cl.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.ID == id {
				return m.Role, m.Lag
			}
		}
		return "", 0
	}
	testwait.For(t, 15*time.Second, "learner 3 to catch up over CURVE", func() bool {
		r, lag := role(3)
		return r == wire.RoleLearner && lag == 0
	})
	// As `raftmq member add` does, retry while the leader says it is still
	// recovering (it joined empty: decision 25).
	testwait.Err(t, 15*time.Second, "the promotion of node 3", func() error { return cl.PromoteMember(ctx, 3) })
	if r, _ := role(3); r != wire.RoleVoter {
		t.Fatalf("node 3 is a %q after its promotion", r)
	}
	put(msgs/2+3, msgs)

	// Four voters: with one original lost, node 3 is part of every quorum.
	nodes[0].stop(t)
	put(msgs, msgs+1)
	for i := range msgs + 1 {
		if m, ok, err := cl.Pop(ctx, "q"); err != nil || !ok || m != fmt.Sprintf("m%02d", i) {
			t.Fatalf("pop %d: %q %v %v", i, m, ok, err)
		}
	}
}
