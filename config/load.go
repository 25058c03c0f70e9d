package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxClusterFileBytes bounds the cluster file LoadCluster reads.
const MaxClusterFileBytes = 1 << 20

// LoadCluster reads a cluster file in the course format,
//
//	{"addresses": [{"ip": "127.0.0.1", "port": 5550, "internal_port": 5560}, ...]}
//
// with an optional "cluster_id" and, for CURVE, a "curve_public" key on
// every address. Unknown keys are allowed at every level (the
// course tooling adds its own). The result is validated (Cluster.Validate).
// Errors name the file and, for JSON syntax errors, the line and column; for
// a wrong value, the field ("addresses[1].port").
func LoadCluster(path string) (Cluster, error) {
	f, err := os.Open(path)
	if err != nil {
		return Cluster{}, fmt.Errorf("%w %s: %w", ErrClusterFile, path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxClusterFileBytes+1))
	if err != nil {
		return Cluster{}, fmt.Errorf("%w %s: %w", ErrClusterFile, path, err)
	}
	if len(data) > MaxClusterFileBytes {
		return Cluster{}, fmt.Errorf("%w %s: larger than %d bytes; is this the cluster file?",
			ErrClusterFile, path, MaxClusterFileBytes)
	}
	c, err := parseCluster(data)
	if err != nil {
		return Cluster{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Cluster{}, fmt.Errorf("cluster file %s:\n%w", path, err)
	}
	return c, nil
}

// parseCluster decodes the file field by field so that a wrong value is
// reported with its position in the addresses list.
func parseCluster(data []byte) (Cluster, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return Cluster{}, jsonError(data, err)
	}
	if top == nil {
		return Cluster{}, fmt.Errorf("%w: want a JSON object {\"addresses\": [...]}", ErrClusterFile)
	}
	var c Cluster
	rawAddrs, ok := top["addresses"]
	if !ok {
		return Cluster{}, &FieldError{Field: "addresses", Problem: "is missing: want {\"addresses\": [{\"ip\": ..., \"port\": ..., \"internal_port\": ...}]}"}
	}
	var addrs []json.RawMessage
	if err := json.Unmarshal(rawAddrs, &addrs); err != nil {
		return Cluster{}, &FieldError{Field: "addresses", Problem: fmt.Sprintf("must be a list of objects, got %s", clip(rawAddrs))}
	}
	var errs []error
	var withID, withoutID []int
	for i, raw := range addrs {
		a, hasID, err := parseAddress(i, raw)
		if hasID {
			withID = append(withID, i)
		} else {
			withoutID = append(withoutID, i)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.Addresses = append(c.Addresses, a)
	}
	c.ExplicitIDs = len(withID) > 0
	if len(withID) > 0 && len(withoutID) > 0 {
		errs = append(errs, &FieldError{Field: fmt.Sprintf("addresses[%d].id", withoutID[0]),
			Problem: fmt.Sprintf("is missing, but addresses[%d] has one: give every node an \"id\", or none (ids are then the indexes)", withID[0])})
	}
	if raw, ok := top["cluster_id"]; ok {
		if err := json.Unmarshal(raw, &c.ClusterID); err != nil {
			errs = append(errs, &FieldError{Field: "cluster_id", Problem: fmt.Sprintf("must be a string, got %s", clip(raw))})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Cluster{}, err
	}
	return c, nil
}

func parseAddress(i int, raw json.RawMessage) (Address, bool, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Address{}, false, &FieldError{Field: fmt.Sprintf("addresses[%d]", i),
			Problem: fmt.Sprintf("must be an object {\"ip\": ..., \"port\": ..., \"internal_port\": ...}, got %s", clip(raw))}
	}
	var a Address
	var errs []error
	field := func(name string, dst any, want string) {
		f := fmt.Sprintf("addresses[%d].%s", i, name)
		v, ok := m[name]
		if !ok {
			errs = append(errs, &FieldError{Field: f, Problem: "is missing"})
			return
		}
		if err := json.Unmarshal(v, dst); err != nil {
			errs = append(errs, &FieldError{Field: f, Problem: fmt.Sprintf("must be %s, got %s", want, clip(v))})
		}
	}
	field("ip", &a.IP, "a string such as \"127.0.0.1\"")
	field("port", &a.Port, "an integer port number")
	field("internal_port", &a.InternalPort, "an integer port number")
	if _, ok := m["curve_public"]; ok {
		field("curve_public", &a.CurvePublic, "a string holding a Z85 public key (see `raftmq keygen`)")
	}
	_, hasID := m["id"]
	if hasID {
		field("id", &a.ID, "an integer node id")
	}
	return a, hasID, errors.Join(errs...)
}

// jsonError turns a decoding error into one that names line and column.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := lineCol(data, syn.Offset)
		return fmt.Errorf("%w: invalid JSON at line %d, column %d: %w", ErrClusterFile, line, col, err)
	case errors.As(err, &typ):
		line, col := lineCol(data, typ.Offset)
		return fmt.Errorf("%w: at line %d, column %d: want a JSON object {\"addresses\": [...]}, got %s",
			ErrClusterFile, line, col, typ.Value)
	}
	return fmt.Errorf("%w: %w", ErrClusterFile, err)
}

// lineCol converts a byte offset (as json reports it: the offset after the
// offending byte) to a 1-based line and column.
func lineCol(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset > 0 {
		offset-- // json's offset points just past the bad byte
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// clip shortens a raw JSON value for an error message.
func clip(raw []byte) string {
	const maxBytes = 40
	s := string(bytes.TrimSpace(raw))
	if len(s) > maxBytes {
		return s[:maxBytes] + "..."
	}
	return s
}
