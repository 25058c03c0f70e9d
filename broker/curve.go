package broker

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/config"
)

// CURVE: when the cluster file carries curve_public keys, both listening
// sockets are CURVE servers and every connection must finish a CURVE
// handshake and then pass this node's own ZAP handler, which knows one
// policy per ZAP domain: the peer port admits the cluster's nodes' keys,
// the client port the keys of the clients file (or any key, "*"). libzmq
// itself refuses a plaintext peer (mechanism mismatch) and a peer that does
// not know this node's public key (its HELLO does not decrypt), before ZAP.
//
// pebbe/zmq4 ships a ZAP handler, but it serves only the default context
// (the broker has its own, with two I/O threads) and keeps its key maps
// without a lock; see decision 20.

// ZAP domains of the two listening sockets; a connecting peer cannot pick
// its domain, the listening socket sets it.
const (
	zapDomainPeer   = "raftmq-peer"
	zapDomainClient = "raftmq-client"
	// zapEndpoint is where libzmq sends ZAP requests (RFC 27), per context.
	zapEndpoint       = "inproc://zeromq.zap.01"
	curveRefusalEvery = dropLogInterval // one log line per peer address per this
	// maxRefusalAddrs bounds the addresses the refusal log remembers; past
	// it, old entries are forgotten, and if all are recent, every further
	// address shares one entry.
	maxRefusalAddrs = 4096
)

// curveKeys are a CURVE-enabled node's keys, all Z85.
type curveKeys struct {
	secret, public string
	peers          map[uint64]string // raft id → public key, self excluded
}

// newCurveKeys checks the node's secret key against its own entry in the
// cluster file and collects the peers' keys; nil when CURVE is off.
func newCurveKeys(cfg config.Node) (*curveKeys, error) {
	if cfg.CurveSecret == "" {
		return nil, nil
	}
	pub, err := zmq.AuthCurvePublic(cfg.CurveSecret)
	if err != nil {
		return nil, fmt.Errorf("broker: derive the CURVE public key: %w (is libzmq built with CURVE?)", err)
	}
	if want := cfg.Self().CurvePublic; pub != want {
		return nil, fmt.Errorf("broker: the CURVE secret key belongs to public key %q, but the cluster file gives node %d the key %q: "+
			"use this node's own secret key file, or fix addresses[%d].curve_public", pub, cfg.ID, want, cfg.ID)
	}
	k := &curveKeys{secret: cfg.CurveSecret, public: pub, peers: map[uint64]string{}}
	for i, a := range cfg.Cluster.Addresses {
		if id := cfg.Cluster.NodeID(i); id != cfg.ID {
			k.peers[raftID(id)] = a.CurvePublic
		}
	}
	return k, nil
}

// serveCurve makes s a CURVE server whose connections ZAP checks in domain.
func serveCurve(s *zmq.Socket, secret, domain string) error {
	if err := s.SetCurveServer(1); err != nil {
		return err
	}
	if err := s.SetCurveSecretkey(secret); err != nil {
		return err
	}
	return s.SetZapDomain(domain)
}

// dialCurve makes s a CURVE client of the server with public key server.
func dialCurve(s *zmq.Socket, server, public, secret string) error {
	for _, set := range []func() error{
		func() error { return s.SetCurveServerkey(server) },
		func() error { return s.SetCurvePublickey(public) },
		func() error { return s.SetCurveSecretkey(secret) },
	} {
		if err := set(); err != nil {
			return err
		}
	}
	return nil
}

// zapPolicy is who may pass one ZAP domain.
type zapPolicy struct {
	any  bool            // any key that completed a CURVE handshake
	keys map[string]bool // Z85 public keys
}

func newZapPolicy(any bool, keys ...string) zapPolicy {
	p := zapPolicy{any: any, keys: map[string]bool{}}
	for _, k := range keys {
		p.keys[k] = true
	}
	return p
}

// zapDecision is the answer to one ZAP request.
type zapDecision struct {
	ok     bool
	key    string // the client's Z85 public key, "" if none was offered
	reason string // why not, for the log and the ZAP status text
}

// decide answers a ZAP request (RFC 27 frames after the delimiter:
// version, request id, domain, address, routing id, mechanism,
// credentials...). The policies are read-only after start, so decide needs
// no lock.
func decide(policies map[string]zapPolicy, domain, mechanism string, creds [][]byte) zapDecision {
	p, ok := policies[domain]
	switch {
	case !ok:
		return zapDecision{reason: fmt.Sprintf("unknown ZAP domain %q", domain)}
	case mechanism != "CURVE":
		return zapDecision{reason: fmt.Sprintf("mechanism %s, want CURVE", mechanism)}
	case len(creds) != 1 || len(creds[0]) != 32:
		return zapDecision{reason: "no 32-byte CURVE public key"}
	}
	key := zmq.Z85encode(string(creds[0]))
	if p.any || p.keys[key] {
		return zapDecision{ok: true, key: key}
	}
	return zapDecision{key: key, reason: "public key not allowed"}
}

// zapHandler answers the ZAP requests of one ZeroMQ context. It owns its
// REP socket on one goroutine.
type zapHandler struct {
	policies map[string]zapPolicy // by ZAP domain; read-only
	refusals *refusalLog
	sock     *zmq.Socket
	owner    socketOwner
}

// startZAP binds the ZAP endpoint of zctx. Call it before any CURVE
// socket binds: libzmq lets connections through when no handler is bound.
func startZAP(zctx *zmq.Context, policies map[string]zapPolicy, refusals *refusalLog) (*zapHandler, error) {
	s, err := zctx.NewSocket(zmq.REP)
	if err != nil {
		return nil, fmt.Errorf("broker: ZAP socket: %w", err)
	}
	if err := s.SetLinger(0); err != nil {
		s.Close()
		return nil, fmt.Errorf("broker: ZAP socket: %w", err)
	}
	if err := s.Bind(zapEndpoint); err != nil {
		s.Close()
		return nil, fmt.Errorf("broker: bind ZAP handler: %w", err)
	}
	z := &zapHandler{policies: policies, refusals: refusals, sock: s}
	z.owner.start(s, z.answer)
	return z, nil
}

// stop ends the handler. Call it after every CURVE socket of the context
// is closed. Safe on nil and more than once.
func (z *zapHandler) stop() {
	if z == nil {
		return
	}
	z.owner.stop()
}

// answer answers one ZAP request, if one is queued.
func (z *zapHandler) answer() {
	req, err := z.sock.RecvMessageBytes(zmq.DONTWAIT)
	if err != nil {
		return
	}
	if len(req) < 6 {
		// Not from libzmq; a REP socket must still answer.
		_, _ = z.sock.SendMessage("1.0", "", "500", "malformed ZAP request", "", "")
		return
	}
	id, domain, addr, mechanism := req[1], string(req[2]), string(req[3]), string(req[5])
	d := decide(z.policies, domain, mechanism, req[6:])
	status, text := "200", "OK"
	if !d.ok {
		status, text = "400", d.reason
		z.refusals.refused(portOfDomain(domain), addr, d.reason, d.key)
	}
	// The user id is the client's key: libzmq attaches it to the
	// connection's messages as "User-Id".
	_, _ = z.sock.SendMessage("1.0", id, status, text, d.key, "")
}

func portOfDomain(domain string) string {
	switch domain {
	case zapDomainPeer:
		return "peer"
	case zapDomainClient:
		return "client"
	}
	return domain
}

// refusalLog counts refused CURVE connections and logs at most one line
// per curveRefusalEvery per peer address (IP, without the port: a
// reconnecting stranger uses a new port each time). Safe for concurrent
// use: the ZAP handler and the socket monitors share it.
type refusalLog struct {
	log   zerolog.Logger
	every time.Duration
	now   func() time.Time
	total *atomic.Uint64 // refusals counted; shared with the node's stats

	mu         sync.Mutex
	lastLogged map[string]time.Time // guarded by mu
	unlogged   map[string]uint64    // refusals since the address's last line; guarded by mu
}

// newRefusalLog counts in total (a fresh counter when nil).
func newRefusalLog(total *atomic.Uint64, log zerolog.Logger) *refusalLog {
	if total == nil {
		total = new(atomic.Uint64)
	}
	return &refusalLog{log: log, every: curveRefusalEvery, now: time.Now, total: total,
		lastLogged: map[string]time.Time{}, unlogged: map[string]uint64{}}
}

// overflowAddr is the entry every address shares once maxRefusalAddrs
// recent addresses are remembered.
const overflowAddr = "(other addresses)"

// refused records one refused connection on port ("peer" or "client") from
// addr ("ip" or "ip:port"; "" if unknown) and logs it unless addr was
// logged within the interval. key is the offered public key, if any. It
// reports whether it logged.
func (r *refusalLog) refused(port, addr, reason, key string) bool {
	total := r.total.Add(1)
	ip := addrIP(addr)
	r.mu.Lock()
	now := r.now()
	if _, known := r.lastLogged[ip]; !known && len(r.lastLogged) >= maxRefusalAddrs {
		for a, t := range r.lastLogged {
			if now.Sub(t) >= r.every {
				delete(r.lastLogged, a)
				delete(r.unlogged, a)
			}
		}
		if len(r.lastLogged) >= maxRefusalAddrs {
			ip = overflowAddr
		}
	}
	last, seen := r.lastLogged[ip]
	if seen && now.Sub(last) < r.every {
		r.unlogged[ip]++
		r.mu.Unlock()
		return false
	}
	r.lastLogged[ip] = now
	suppressed := r.unlogged[ip]
	r.unlogged[ip] = 0
	r.mu.Unlock()
	ev := r.log.Warn().Str("port", port).Str("peer_address", ip).Str("reason", reason).
		Uint64("refused_since_last_line", suppressed).Uint64("refused_total", total)
	if key != "" {
		ev = ev.Str("curve_public", key)
	}
	ev.Msg("connection refused: CURVE authentication failed")
	return true
}

// addrIP strips the port from "ip:port"; other strings pass through.
func addrIP(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().String()
	}
	if addr == "" {
		return "unknown"
	}
	return addr
}

// peerAddr is the remote address of a connected socket descriptor, "" if
// it is gone.
func peerAddr(fd int) string {
	sa, err := syscall.Getpeername(fd)
	if err != nil {
		return ""
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return ""
}
