package client

import (
	"fmt"

	zmq "github.com/pebbe/zmq4"
)

// Curve secures a Client's connections with ZeroMQ CURVE: each server is
// authenticated by its public key, and the client by its own key pair,
// which the brokers' clients file must allow.
type Curve struct {
	// PublicKey and SecretKey are this client's key pair, Z85.
	PublicKey, SecretKey string
	// ServerKeys maps each server address, as the Client dials it ("ip:port",
	// the cluster file's client address, also what leader hints name), to
	// that server's Z85 public key (the cluster file's curve_public).
	ServerKeys map[string]string
}

// NewCurve builds a Curve from the client's secret key, deriving its public
// key.
func NewCurve(secretKey string, serverKeys map[string]string) (*Curve, error) {
	pub, err := zmq.AuthCurvePublic(secretKey)
	if err != nil {
		return nil, fmt.Errorf("client: CURVE public key from the secret key: %w", err)
	}
	keys := make(map[string]string, len(serverKeys))
	for a, k := range serverKeys {
		keys[a] = k
	}
	return &Curve{PublicKey: pub, SecretKey: secretKey, ServerKeys: keys}, nil
}

// Secure makes s, not yet connected, a CURVE client of the server at addr.
func (c *Curve) Secure(s *zmq.Socket, addr string) error {
	server, ok := c.ServerKeys[addr]
	if !ok {
		return fmt.Errorf("%w: no CURVE public key known for server %s (is it in the cluster file?)", ErrUnreachable, addr)
	}
	for _, set := range []func() error{
		func() error { return s.SetCurveServerkey(server) },
		func() error { return s.SetCurvePublickey(c.PublicKey) },
		func() error { return s.SetCurveSecretkey(c.SecretKey) },
	} {
		if err := set(); err != nil {
			return fmt.Errorf("client: CURVE keys for %s: %w", addr, err)
		}
	}
	return nil
}
