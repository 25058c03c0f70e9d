// Package broker runs one raftmq node: it owns the raftlog core in one
// goroutine, the ZeroMQ sockets, the client API, the apply loop and
// read-index reads.
package broker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/config"
	"github.com/raftmq/raftmq/metrics"
	"github.com/raftmq/raftmq/raftlog"
	"github.com/raftmq/raftmq/snapshot"
	"github.com/raftmq/raftmq/storage"

	"github.com/raftmq/raftmq/internal/fsutil"
)

// Broker is one node of a raftmq cluster.
type Broker struct {
	cfg   config.Node
	log   zerolog.Logger
	raft  *storage.RaftDB
	state *storage.StateDB
	store *snapshot.Store
	core  *raftlog.Core
	self  uint64
	// addrs are the addresses of every node this one knows, by raft id;
	// members is raft.db's record of membership changes.
	addrs   map[uint64]config.Address
	members storage.Members

	status  statusBox
	stats   stats
	metrics *metrics.Metrics
	disk    *diskGuard
	// metricsAddr is where the metrics server listens once Run started it.
	metricsAddr atomic.Pointer[string]

	// curve holds the node's CURVE keys; nil when CURVE is off. curveLog
	// counts and logs refused CURVE connections on both ports.
	curve    *curveKeys
	curveLog *refusalLog

	// rebuildMinFreeBytes is the node's threshold for rebuilding a bloated
	// bbolt file; tests lower it.
	rebuildMinFreeBytes int64
	// peerTransport, if set, makes the peer transport in place of ZeroMQ
	// on the internal port; peers are raft id → "ip:internal_port". Tests
	// set it to connect brokers in process (memnet_test.go); the client
	// port stays ZeroMQ.
	peerTransport func(peers map[uint64]string) (transport, error)

	runOnce sync.Once
}

// Request-size overhead allowed beyond the message itself: JSON quoting
// (a message may escape to six times its bytes), field names, topic, ids.
const requestOverheadBytes = 64 << 10

// New opens (or creates) the node's data directory and its consensus state.
// It does not bind any port: Run does.
func New(cfg config.Node, log zerolog.Logger) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := fsutil.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("broker: create data directory: %w", err)
	}
	nodeLog := log.With().Int("node", cfg.ID).Logger()
	curve, err := newCurveKeys(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Recover && len(cfg.Cluster.Addresses) == 1 {
		return nil, fmt.Errorf("broker: --recover in a one-node cluster: there is no peer to recover from; restore the data directory from a backup")
	}
	verifyStart := time.Now()
	repaired, err := repairDataDir(cfg, nodeLog)
	if err != nil {
		return nil, err
	}
	verifyTook := time.Since(verifyStart)
	raftDB, err := storage.OpenRaftDB(filepath.Join(cfg.DataDir, storage.RaftDBFile), cfg.Cluster.ID())
	if err != nil {
		return nil, err
	}
	stateDB, err := storage.OpenStateDB(filepath.Join(cfg.DataDir, storage.StateDBFile), storage.StateOptions{
		MaxSessions:  cfg.MaxSessions,
		GroupEntries: stateGroupEntries,
		GroupBytes:   stateGroupBytes,
		GroupDelay:   stateGroupDelay,
	})
	if err != nil {
		raftDB.Close()
		return nil, err
	}
	b := &Broker{cfg: cfg, raft: raftDB, state: stateDB, self: raftID(cfg.ID), rebuildMinFreeBytes: rebuildMinFreeBytes,
		curve: curve}
	b.curveLog = newRefusalLog(&b.stats.curveConnsRefused, nodeLog.With().Str("component", "curve").Logger())
	b.log = nodeLog
	if repaired || cfg.Recover {
		// Persisted first: a crash before the node catches up must not let
		// it restart as a voter with a log that lacks what it acknowledged.
		if err := raftDB.SetRecovering(true); err != nil {
			b.closeStores()
			return nil, err
		}
	}
	if err := b.openSnapshots(); err != nil {
		b.closeStores()
		if errors.Is(err, errStateLost) {
			return restartLostState(cfg, log, nodeLog, err)
		}
		return nil, err
	}
	if err := b.checkConsistent(); err != nil {
		b.closeStores()
		return nil, err
	}
	peers, err := b.resolveMembership()
	if err != nil {
		b.closeStores()
		return nil, err
	}
	core, err := raftlog.New(raftlog.Config{
		ID:                         b.self,
		Peers:                      peers,
		ElectionTicks:              cfg.ElectionTicks,
		HeartbeatTicks:             cfg.HeartbeatTicks,
		Storage:                    raftDB,
		Applied:                    stateDB.AppliedIndex(),
		Rand:                       mrand.New(mrand.NewSource(randomSeed())),
		PreVote:                    true,
		CheckQuorum:                true,
		MaxSizePerMsg:              cfg.MaxBatchBytes,
		MaxInflightMsgs:            cfg.MaxInflightMsgs,
		MaxUncommittedEntriesBytes: uint64(cfg.MaxPendingRequests) * uint64(cfg.MaxMessageBytes+requestOverheadBytes),
		MaxCommittedSizePerReady:   cfg.MaxBatchBytes,
		Logger:                     coreLogger{b.log.With().Str("component", "raft").Logger()},
		Recovering:                 raftDB.Recovering(),
	})
	if err != nil {
		b.closeStores()
		return nil, fmt.Errorf("broker: start consensus: %w", err)
	}
	b.core = core
	b.disk = newDiskGuard(cfg, b.log.With().Str("component", "disk").Logger())
	b.metrics = metrics.New(metricsSource{b}, metrics.Options{TopicLimit: cfg.MetricsTopics})
	hs, _, _ := raftDB.InitialState()
	last, _ := raftDB.LastIndex()
	first, _ := raftDB.FirstIndex()
	snap, _ := raftDB.Snapshot()
	b.log.Info().Str("data_dir", cfg.DataDir).Uint64("term", hs.Term).Uint64("vote", hs.Vote).
		Uint64("first_index", first).Uint64("last_index", last).Uint64("snapshot_index", snap.Index).
		Uint64("applied", stateDB.AppliedIndex()).Bool("recovering", raftDB.Recovering()).
		Dur("verify_took", verifyTook).Msg("storage opened")
	return b, nil
}

// restartLostState handles a state.db that is behind the compacted log
// with nothing on this node to fill the gap (it was deleted or replaced;
// since decision 26 no snapshot file is kept): in a cluster, raft.db and
// state.db are moved aside like damaged files (decision 8) and the node
// starts empty and recovering, to get the state from the leader; a
// one-node cluster has no one to get it from and refuses.
func restartLostState(cfg config.Node, log, nodeLog zerolog.Logger, cause error) (*Broker, error) {
	if len(cfg.Cluster.Addresses) == 1 {
		return nil, fmt.Errorf("%w: %w; this is a one-node cluster: there is no peer to get the state from; "+
			"restore the data directory from a backup", ErrDamaged, cause)
	}
	aside, err := makeDamagedDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{storage.RaftDBFile, storage.StateDBFile} {
		if err := moveAside(filepath.Join(cfg.DataDir, name), filepath.Join(aside, name)); err != nil {
			return nil, err
		}
	}
	nodeLog.Error().Err(cause).Str("moved_to", aside).
		Msg("state.db lost: raft.db and state.db moved aside (not deleted); starting empty in recovering mode: " +
			"this node gets the state from the leader and neither votes nor leads until it has caught up")
	cfg.Recover = true
	return New(cfg, log)
}

// openSnapshots opens the snapshot store (discarding half-received or
// half-written snapshots), removes what an interrupted snapshot left in the
// data directory and finishes an interrupted install.
func (b *Broker) openSnapshots() error {
	store, err := snapshot.Open(filepath.Join(b.cfg.DataDir, storage.SnapshotsDir), b.cfg.Cluster.ID(), snapshot.MaxKept)
	if err != nil {
		return err
	}
	if n := store.RemovedTempFiles(); n > 0 {
		b.log.Info().Int("files", n).Msg("discarded snapshots a crash left half-written or half-received")
	}
	b.store = store
	if err := recoverState(b.raft, b.state, store, b.cfg.DataDir, b.log); err != nil {
		return err
	}
	if err := removeLeftovers(b.cfg.DataDir, b.log); err != nil {
		return err
	}
	if err := restoreMembers(b.raft, store, b.log); err != nil {
		return err
	}
	return removeSnapshotFiles(store, b.log)
}

// checkConsistent refuses to start when state.db claims to have applied
// entries that raft.db does not hold: the two files come from different
// histories (for example raft.db was deleted), and serving would be wrong.
func (b *Broker) checkConsistent() error {
	last, err := b.raft.LastIndex()
	if err != nil {
		return err
	}
	if applied := b.state.AppliedIndex(); applied > last {
		return fmt.Errorf("broker: %s has applied index %d but %s ends at index %d: the two files are from different histories; "+
			"move the data directory aside and let this node rejoin from its peers, or restore both files from one backup",
			b.state.Path(), applied, b.raft.Path(), last)
	}
	return nil
}

// resolveMembership decides the membership this node starts with: the one
// persisted in raft.db if any (the cluster file then only gives
// addresses), else the cluster file's nodes as voters (a new cluster),
// persisted now, or none at all with --join (the node waits to be added).
// A node whose raft.db says it was removed refuses to start. It returns the
// Peers for raftlog.Config.
func (b *Broker) resolveMembership() ([]uint64, error) {
	b.members = b.raft.Members()
	if slices.Contains(b.members.Removed, b.self) {
		return nil, fmt.Errorf("%w: %s records that node %d was removed from its cluster (membership change at index %d or before); "+
			"its data may not rejoin under that id: wipe the data directory and add this machine with a new id",
			ErrRemoved, b.raft.Path(), b.cfg.ID, b.members.Index)
	}
	b.addrs = addressBook(b.cfg.Cluster, b.members)
	_, cs, err := b.raft.InitialState()
	if err != nil {
		return nil, err
	}
	if !cs.IsEmpty() {
		return nil, nil // raftlog.New takes raft.db's
	}
	if b.cfg.Join {
		b.log.Info().Msg("joining: no membership yet; waiting to be added by the leader (raftmq member add)")
		return nil, nil
	}
	peers := make([]uint64, len(b.cfg.Cluster.Addresses))
	for i := range peers {
		peers[i] = raftID(b.cfg.Cluster.NodeID(i))
	}
	slices.Sort(peers)
	return peers, b.raft.SetConfState(raftlog.ConfState{Voters: peers})
}

func randomSeed() int64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("broker: no randomness: %v", err))
	}
	return int64(binary.LittleEndian.Uint64(b[:]))
}

// closeStores closes state.db and raft.db and reports whether both closed
// without error.
func (b *Broker) closeStores() bool {
	ok := true
	if err := b.state.Close(); err != nil {
		b.log.Error().Err(err).Msg("close state.db")
		ok = false
	}
	if err := b.raft.Close(); err != nil {
		b.log.Error().Err(err).Msg("close raft.db")
		ok = false
	}
	return ok
}

// Status returns the node's latest published status.
func (b *Broker) Status() wire.Status {
	if st := b.status.Load(); st != nil {
		return *st
	}
	return wire.Status{Role: raftlog.RoleFollower.String(), ID: b.cfg.ID}
}

// Run serves until ctx is done, then stops gracefully. It returns nil on a
// clean stop and an error when the node could not start or stopped itself.
// Run may be called once.
func (b *Broker) Run(ctx context.Context) error {
	err := errors.New("broker: Run called twice")
	b.runOnce.Do(func() { err = b.run(ctx) })
	return err
}

func (b *Broker) run(ctx context.Context) (err error) {
	defer func() {
		if !b.closeStores() || err != nil {
			return
		}
		if werr := writeCleanStop(b.cfg.DataDir); werr != nil {
			b.log.Warn().Err(werr).Msg("cannot record the clean stop; the next start checks every file")
		}
	}()
	zctx, err := zmq.NewContext()
	if err != nil {
		return fmt.Errorf("broker: zeromq: %w", err)
	}
	// One I/O thread for the peer sockets, one for the client socket (see
	// peerIOThread): a flood on the client port cannot delay heartbeats.
	if err := zctx.SetIoThreads(2); err != nil {
		return fmt.Errorf("broker: zeromq: %w", err)
	}
	defer func() {
		if terr := zctx.Term(); terr != nil {
			b.log.Error().Err(terr).Msg("zeromq terminate")
		}
	}()
	var peerSec *peerCurve
	if b.curve != nil {
		zap, err := startZAP(zctx, b.zapPolicies(), b.curveLog)
		if err != nil {
			return err
		}
		// Deferred after zctx.Term, so it runs before it, once every
		// socket (deferred later, closed earlier) is gone.
		defer zap.stop()
		peerSec = &peerCurve{keys: b.curve, refusals: b.curveLog}
		b.logCurvePolicy()
	}
	self := b.cfg.Self()
	listenIP := self.IP
	if b.cfg.ListenIP != "" {
		listenIP = b.cfg.ListenIP
	}
	peerAddrs := peerMap(b.addrs, b.self)
	clientAddrs := map[uint64]string{}
	for id, a := range b.addrs {
		clientAddrs[id] = a.ClientAddr()
	}
	maxRequestBytes := 6*b.cfg.MaxMessageBytes + requestOverheadBytes
	peerLim := peerLimits{
		// A command holds one message plus its topic and ids, well within
		// requestOverheadBytes.
		maxFrameBytes: maxPeerFrameBytes(b.cfg.MaxBatchBytes, b.cfg.MaxMessageBytes+requestOverheadBytes, b.cfg.SnapshotChunkBytes),
		maxConns:      maxPeerConns(len(b.cfg.Cluster.Addresses)),
		refused:       &b.stats.peerFramesRefused,
		connsRefused:  &b.stats.peerConnsRefused,
	}
	var trans transport
	if b.peerTransport != nil {
		trans, err = b.peerTransport(peerAddrs)
	} else {
		trans, err = newZMQTransport(zctx, b.cfg.Cluster.ID(), b.self, tcpEndpoint(listenIP, self.InternalPort), peerAddrs, peerLim, peerSec, b.log)
	}
	if err != nil {
		return err
	}
	defer trans.Close()
	if removed := removedBook(b.cfg.Cluster, b.members); len(removed) > 0 {
		trans.SetPeers(peerAddrs, removed)
	}

	diskStop := make(chan struct{})
	defer close(diskStop)
	go b.disk.run(diskStop)

	requestCh := make(chan clientRequest, b.cfg.MaxPendingRequests)
	var stopping atomic.Bool
	cs := &clientServer{
		log: b.log.With().Str("component", "clients").Logger(),
		limits: wire.Limits{
			MaxRequestBytes:  maxRequestBytes,
			MaxMessageBytes:  b.cfg.MaxMessageBytes,
			MaxTopicBytes:    b.cfg.MaxTopicBytes,
			MaxClientIDBytes: 256,
		},
		timeout:  b.cfg.RequestTimeout,
		maxPend:  b.cfg.MaxPendingRequests,
		status:   b.Status,
		toNode:   requestCh,
		stopping: &stopping,
		maxConns: b.cfg.MaxClientConnections,
		connsCut: &b.stats.clientConnsRefused,
		refusals: newRefusals(&b.stats.refused, b.log.With().Str("component", "clients").Logger()),
		curveLog: b.curveLog,
		metrics:  b.metrics,
	}
	if b.curve != nil {
		cs.curveSecret = b.curve.secret
	}
	if err := newClientServer(zctx, tcpEndpoint(listenIP, self.Port), cs); err != nil {
		return err
	}
	rep := newReplier(cs.replies, cs.refusals, b.metrics)
	rep.log = b.log
	n := &node{
		log:            b.log,
		core:           b.core,
		raft:           b.raft,
		state:          b.state,
		trans:          trans,
		reply:          rep,
		self:           b.self,
		addrs:          b.addrs,
		members:        b.members,
		clientAddrs:    clientAddrs,
		tick:           b.cfg.TickInterval,
		electionTicks:  b.cfg.ElectionTicks,
		maxBatchBytes:  b.cfg.MaxBatchBytes,
		shutdownBudget: b.cfg.ShutdownTimeout * 4 / 5,
		requestCh:      requestCh,
		stats:          &b.stats,
		status:         &b.status,
		metrics:        b.metrics,
		disk:           b.disk,
		reqs:           newRequests(uint64(randomSeed())),
		waiters:        newWaiters(),
		requestTimeout: b.cfg.RequestTimeout,

		store:           b.store,
		clusterID:       b.cfg.Cluster.ID(),
		dataDir:         b.cfg.DataDir,
		snapshotEntries: b.cfg.SnapshotEntries,
		trailingEntries: b.cfg.TrailingEntries,
		chunkBytes:      b.cfg.SnapshotChunkBytes,
		snapWanted:      map[uint64]raftlog.Message{},
		snapTiming: snapTiming{
			resendAfter: b.cfg.ElectionTimeout(),
			giveUpAfter: max(5*time.Second, 20*b.cfg.ElectionTimeout()),
		},
		rebuildMinFreeBytes: b.rebuildMinFreeBytes,
		senders:             map[uint64]*snapSender{},
		snapReportCh:        make(chan snapReport),
		installCh:           make(chan pendingInstall),
	}
	n.applier = newApplier(b.state, b.log.With().Str("component", "applier").Logger(), n.failpoint)
	defer n.applier.close() // before the stores close (deferred earlier)
	n.handed, n.applied = b.state.AppliedIndex(), b.state.AppliedIndex()
	if s, err := b.raft.Snapshot(); err == nil {
		n.snapIndex = s.Index
	}
	// A compaction's steps that a stop or a crash cut short are scheduled
	// again: the schedule lives in memory (CompactLater).
	if err := n.compactLog(); err != nil {
		cs.close()
		return err
	}
	// The only voter of a cluster is leader from raftlog.New on: persist its
	// term and no-op and publish that before the first request is read, so
	// a client that asks at once finds a leader, fresh or restarted.
	if err := n.processReady(); err != nil {
		cs.close()
		return err
	}
	n.publishStatus()
	if b.cfg.MetricsListen != "" {
		srv, err := metrics.Listen(b.cfg.MetricsListen, b.metrics)
		if err != nil {
			cs.close()
			return err
		}
		defer srv.Close() // before the stores close: a scrape reads state.db
		addr := srv.Addr()
		b.metricsAddr.Store(&addr)
		b.log.Info().Str("metrics", "http://"+addr+"/metrics").Msg("metrics serving")
	}
	nodeDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cs.run(nodeDone)
	}()
	b.log.Info().Str("client", tcpEndpoint(listenIP, self.Port)).Str("peer", tcpEndpoint(listenIP, self.InternalPort)).
		Int("cluster_size", len(b.cfg.Cluster.Addresses)).Str("cluster_id", b.cfg.Cluster.ID()).Msg("broker serving")
	b.logIgnored()

	stop := make(chan struct{})
	runErr := make(chan error, 1)
	go func() { runErr <- n.run(stop) }()
	select {
	case <-ctx.Done():
		b.log.Info().Msg("stopping")
		stopping.Store(true)
		close(stop)
		err = <-runErr
	case err = <-runErr:
		stopping.Store(true)
	}
	rep.close()
	close(nodeDone)
	wg.Wait()
	if err != nil {
		b.log.Error().Err(err).Msg("node stopped")
		return err
	}
	b.log.Info().Msg("stopped")
	return nil
}

// zapPolicies are the ZAP handler's rules: the peer port admits the
// cluster's nodes, the client port the clients file.
func (b *Broker) zapPolicies() map[string]zapPolicy {
	var nodes []string
	for _, a := range b.cfg.Cluster.Addresses {
		nodes = append(nodes, a.CurvePublic)
	}
	cc := b.cfg.CurveClients
	return map[string]zapPolicy{
		zapDomainPeer:   newZapPolicy(false, nodes...),
		zapDomainClient: newZapPolicy(cc.Any, cc.Keys...),
	}
}

// logIgnored warns about options that are set but no longer do anything.
func (b *Broker) logIgnored() {
	for _, name := range b.cfg.Ignored() {
		b.log.Warn().Str("option", name).Msg("this option has no effect since compaction stopped copying state.db (decision 26); remove it")
	}
}

// logCurvePolicy says at start who may connect to the client port.
func (b *Broker) logCurvePolicy() {
	cc := b.cfg.CurveClients
	switch {
	case cc.Any:
		b.log.Info().Msg("CURVE on: the client port admits any client with a key pair (clients file \"*\")")
	case len(cc.Keys) == 0:
		b.log.Warn().Msg("CURVE on and no --curve-clients-file: no client may connect to the client port")
	default:
		b.log.Info().Int("client_keys", len(cc.Keys)).Msg("CURVE on: the client port admits the listed client keys")
	}
}

func tcpEndpoint(ip string, port int) string {
	return "tcp://" + net.JoinHostPort(ip, strconv.Itoa(port))
}
