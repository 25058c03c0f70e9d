package client

import (
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"
)

// Defaults for Options fields left zero.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultAttemptTimeout = 3 * time.Second
	DefaultConnectTimeout = time.Second
	DefaultBackoffBase    = 10 * time.Millisecond
	DefaultBackoffMax     = time.Second
)

// Options configure a Client. Only Servers is required.
type Options struct {
	// Servers are client addresses "ip:port" (or full zmq endpoints
	// "tcp://ip:port"), tried in order until the leader is found.
	Servers []string
	// ClientID names this client's session on the brokers; "" = random. Two
	// live clients must never share one.
	ClientID string
	// Timeout bounds one call including every retry, when the caller's
	// context has no earlier deadline.
	Timeout time.Duration
	// AttemptTimeout bounds the wait for one reply. After it the socket is
	// replaced (so a late reply cannot answer a later request) and the next
	// server is tried. Keep it above the brokers' request timeout to avoid
	// needless duplicate proposals (they are still executed once).
	AttemptTimeout time.Duration
	// ConnectTimeout bounds the wait for a connection before sending.
	ConnectTimeout time.Duration
	// BackoffBase and BackoffMax bound the exponential backoff between
	// failed attempts; each wait is jittered in [d/2, d].
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Curve, when set, secures every connection with CURVE; it must hold a
	// key for each of Servers.
	Curve *Curve
	// Rand draws the jitter; nil = seeded randomly. Used under the Client's
	// lock only.
	Rand *rand.Rand
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Servers) == 0 {
		return o, ErrNoServers
	}
	for i, s := range o.Servers {
		if s == "" {
			return o, fmt.Errorf("client: server %d is empty: %w", i, ErrNoServers)
		}
	}
	o.Servers = append([]string(nil), o.Servers...)
	if o.Curve != nil {
		for _, s := range o.Servers {
			if _, ok := o.Curve.ServerKeys[s]; !ok {
				return o, fmt.Errorf("client: CURVE is on but no public key is known for server %s: %w", s, ErrNoServers)
			}
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = DefaultBackoffBase
	}
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = max(DefaultBackoffMax, o.BackoffBase)
	}
	if o.ClientID == "" {
		o.ClientID = "c-" + hex.EncodeToString(randomBytes(8))
	}
	if o.Rand == nil {
		b := randomBytes(16)
		o.Rand = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])))
	}
	return o, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = crand.Read(b) // never fails on supported platforms (Go 1.24+ panics instead)
	return b
}
