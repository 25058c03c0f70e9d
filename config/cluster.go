package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Limits on the cluster file.
const (
	MaxClusterNodes     = 7  // Raft with more voters gains nothing for a broker
	MaxClusterIDBytes   = 64 // an explicit cluster_id
	clusterIDDerivedLen = 16 // hex chars of a derived cluster id
)

// Address is one node's entry in the cluster file (the course format).
type Address struct {
	IP           string `json:"ip"`
	Port         int    `json:"port"`          // client port (ROUTER, JSON requests)
	InternalPort int    `json:"internal_port"` // peer port (Raft messages)
	// CurvePublic is the node's Z85 CURVE public key; set on every node
	// (CURVE on) or on none.
	CurvePublic string `json:"curve_public,omitempty"`
	// ID is the node's id when the file gives ids ("id", on every entry
	// or on none: Cluster.ExplicitIDs); otherwise ids are the indexes.
	ID int `json:"id,omitempty"`
}

// MaxNodeID bounds an explicit node id.
const MaxNodeID = 1 << 20

// ClientAddr is "ip:port", the address clients connect to.
func (a Address) ClientAddr() string { return net.JoinHostPort(a.IP, strconv.Itoa(a.Port)) }

// PeerAddr is "ip:internal_port", the address peers connect to.
func (a Address) PeerAddr() string {
	return net.JoinHostPort(a.IP, strconv.Itoa(a.InternalPort))
}

// Cluster is the cluster file: every node's addresses, in node-id order.
type Cluster struct {
	Addresses []Address `json:"addresses"`
	// ClusterID is optional; when empty, ID derives it from Addresses.
	ClusterID string `json:"cluster_id,omitempty"`
	// ExplicitIDs: every address carries its node id in "id" (a file that
	// lists the current members of a cluster whose membership changed).
	// False: a node's id is its index in Addresses.
	ExplicitIDs bool `json:"-"`
}

// NodeID is the id of Addresses[i].
func (c Cluster) NodeID(i int) int {
	if c.ExplicitIDs {
		return c.Addresses[i].ID
	}
	return i
}

// Index returns the index in Addresses of node id, or false.
func (c Cluster) Index(id int) (int, bool) {
	for i := range c.Addresses {
		if c.NodeID(i) == id {
			return i, true
		}
	}
	return 0, false
}

// NodeIDs lists the nodes' ids in file order.
func (c Cluster) NodeIDs() []int {
	ids := make([]int, len(c.Addresses))
	for i := range ids {
		ids[i] = c.NodeID(i)
	}
	return ids
}

// Curve reports whether the cluster runs CURVE: its nodes carry
// curve_public keys (Validate makes that all or none).
func (c Cluster) Curve() bool {
	return len(c.Addresses) > 0 && c.Addresses[0].CurvePublic != ""
}

// ID returns ClusterID, or when it is empty a stable hash of the addresses:
// the first 16 hex chars of SHA-256 over each address in order. The hash is
// order-sensitive on purpose: node ids are indexes into Addresses, so a
// reordered file is a different cluster. CURVE keys are not part of it:
// turning CURVE on, or replacing a key, keeps the cluster and its data.
func (c Cluster) ID() string {
	if c.ClusterID != "" {
		return c.ClusterID
	}
	h := sha256.New()
	for _, a := range c.Addresses {
		ip := a.IP
		if p, err := netip.ParseAddr(a.IP); err == nil {
			ip = p.String() // canonical spelling, e.g. IPv6 zero compression
		}
		fmt.Fprintf(h, "%s|%d|%d\n", ip, a.Port, a.InternalPort)
	}
	return hex.EncodeToString(h.Sum(nil))[:clusterIDDerivedLen]
}

// Validate checks the cluster: 1..MaxClusterNodes addresses, each ip parses,
// ports in 1..65535, every port (client and internal) distinct per ip,
// curve_public keys on every node or on none, each a distinct Z85 key, and a
// well-formed cluster_id if set. It reports every problem at once
// (errors.Join of *FieldError).
func (c Cluster) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	switch n := len(c.Addresses); {
	case n == 0:
		bad("addresses", "is empty: list at least one node as {\"ip\": ..., \"port\": ..., \"internal_port\": ...}")
	case n > MaxClusterNodes:
		bad("addresses", "has %d nodes, at most %d are supported", n, MaxClusterNodes)
	}
	type ipPort struct {
		ip   string
		port int
	}
	seen := make(map[ipPort]string) // -> field that used it first
	seenID := make(map[int]int)     // explicit id -> index that used it first
	for i, a := range c.Addresses {
		if c.ExplicitIDs {
			if a.ID < 0 || a.ID > MaxNodeID {
				bad(fmt.Sprintf("addresses[%d].id", i), "(%d) must be in 0..%d", a.ID, MaxNodeID)
			} else if first, dup := seenID[a.ID]; dup {
				bad(fmt.Sprintf("addresses[%d].id", i), "(%d) is already the id of addresses[%d]: ids must be distinct", a.ID, first)
			} else {
				seenID[a.ID] = i
			}
		}
		ip := a.IP
		if a.IP == "" {
			bad(fmt.Sprintf("addresses[%d].ip", i), "is missing")
		} else if p, err := netip.ParseAddr(a.IP); err != nil {
			bad(fmt.Sprintf("addresses[%d].ip", i), "(%q) is not an IP address", a.IP)
		} else {
			ip = p.String()
		}
		for _, pf := range []struct {
			name string
			port int
		}{{"port", a.Port}, {"internal_port", a.InternalPort}} {
			field := fmt.Sprintf("addresses[%d].%s", i, pf.name)
			if pf.port < 1 || pf.port > 65535 {
				bad(field, "(%d) must be in 1..65535", pf.port)
				continue
			}
			k := ipPort{ip, pf.port}
			if first, dup := seen[k]; dup {
				bad(field, "(%d) is already used by %s on %s: every port must be distinct per ip", pf.port, first, a.IP)
				continue
			}
			seen[k] = field
		}
	}
	withKey := 0
	keyOwner := map[string]int{}
	for i, a := range c.Addresses {
		if a.CurvePublic == "" {
			continue
		}
		withKey++
		field := fmt.Sprintf("addresses[%d].curve_public", i)
		if err := CheckCurveKey(a.CurvePublic); err != nil {
			bad(field, "%s", err)
		} else if j, dup := keyOwner[a.CurvePublic]; dup {
			bad(field, "is the same key as addresses[%d].curve_public: every node needs its own key pair", j)
		} else {
			keyOwner[a.CurvePublic] = i
		}
	}
	if withKey > 0 && withKey < len(c.Addresses) {
		for i, a := range c.Addresses {
			if a.CurvePublic == "" {
				bad(fmt.Sprintf("addresses[%d].curve_public", i),
					"is missing: %d of %d nodes carry a curve_public key; CURVE needs every node's key (or none, for CURVE off)", withKey, len(c.Addresses))
			}
		}
	}
	if id := c.ClusterID; id != "" {
		if len(id) > MaxClusterIDBytes {
			bad("cluster_id", "is %d bytes, at most %d are allowed", len(id), MaxClusterIDBytes)
		}
		for _, r := range id {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				bad("cluster_id", "(%q) may contain only letters, digits, '-', '_' and '.'", id)
				break
			}
		}
	}
	return errors.Join(errs...)
}
