package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// CURVE keys are 32-byte Curve25519 keys written in Z85: 40 printable
// characters.
const (
	CurveKeyZ85Len = 40
	// MaxCurveClients bounds the keys a clients file may list.
	MaxCurveClients = 100_000
	// maxCurveFileBytes bounds what the key files may make us read.
	maxCurveSecretFileBytes  = 4 * KiB
	maxCurveClientsFileBytes = MaxCurveClients * (CurveKeyZ85Len + 64)
)

// z85Alphabet is ZeroMQ's Z85 alphabet (RFC 32/Z85).
const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// CheckCurveKey reports why key is not a Z85-encoded 32-byte CURVE key, or
// nil when it is one.
func CheckCurveKey(key string) error {
	if len(key) != CurveKeyZ85Len {
		return fmt.Errorf("is %d characters long, a Z85 CURVE key has %d (make one with `raftmq keygen`)", len(key), CurveKeyZ85Len)
	}
	for i := 0; i < len(key); i += 5 {
		var v uint64
		for j := i; j < i+5; j++ {
			d := strings.IndexByte(z85Alphabet, key[j])
			if d < 0 {
				return fmt.Errorf("has %q at position %d, which is not a Z85 character", key[j], j+1)
			}
			v = v*85 + uint64(d)
		}
		if v > 0xFFFFFFFF {
			return fmt.Errorf("is not valid Z85: characters %d..%d encode a value above 32 bits", i+1, i+5)
		}
	}
	return nil
}

// CurveClients is who may use a CURVE-enabled client port: any client that
// completes a CURVE handshake (Any, the clients file says "*"), or only the
// listed public keys. The zero value allows nobody.
type CurveClients struct {
	Any  bool
	Keys []string // Z85 public keys
}

// LoadCurveSecret reads a node's or a client's Z85 secret key from path.
// The file must be readable by its owner only (mode 0600 or 0400): a
// secret key others can read is no secret. Surrounding white space is
// ignored.
func LoadCurveSecret(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w: curve secret file %s: %w", ErrCurveFile, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%w: curve secret file %s: %w", ErrCurveFile, path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: curve secret file %s is not a regular file", ErrCurveFile, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%w: curve secret file %s has mode %04o: anyone but its owner may read it; run `chmod 600 %s`",
			ErrCurveFile, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCurveSecretFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("%w: curve secret file %s: %w", ErrCurveFile, path, err)
	}
	if len(data) > maxCurveSecretFileBytes {
		return "", fmt.Errorf("%w: curve secret file %s is larger than %d bytes; it should hold one Z85 secret key", ErrCurveFile, path, maxCurveSecretFileBytes)
	}
	key := strings.TrimSpace(string(data))
	if err := CheckCurveKey(key); err != nil {
		return "", fmt.Errorf("%w: curve secret file %s: the key %w", ErrCurveFile, path, err)
	}
	return key, nil
}

// LoadCurveClients reads a clients file: one Z85 public key per line, or a
// single line "*" for any client that completes a CURVE handshake. Empty
// lines and lines starting with '#' are ignored. Every bad line is
// reported, with its number.
func LoadCurveClients(path string) (CurveClients, error) {
	f, err := os.Open(path)
	if err != nil {
		return CurveClients{}, fmt.Errorf("%w: curve clients file %s: %w", ErrCurveFile, path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCurveClientsFileBytes+1))
	if err != nil {
		return CurveClients{}, fmt.Errorf("%w: curve clients file %s: %w", ErrCurveFile, path, err)
	}
	if len(data) > maxCurveClientsFileBytes {
		return CurveClients{}, fmt.Errorf("%w: curve clients file %s is larger than %d bytes", ErrCurveFile, path, maxCurveClientsFileBytes)
	}
	var cc CurveClients
	var errs []error
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxCurveClientsFileBytes)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		switch {
		case s == "" || strings.HasPrefix(s, "#"):
			continue
		case s == "*":
			cc.Any = true
			continue
		}
		if err := CheckCurveKey(s); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %q %w", line, clipString(s), err))
			continue
		}
		if !seen[s] {
			seen[s] = true
			cc.Keys = append(cc.Keys, s)
		}
	}
	if len(cc.Keys) > MaxCurveClients {
		errs = append(errs, fmt.Errorf("lists %d keys, at most %d are allowed (use \"*\" for any client)", len(cc.Keys), MaxCurveClients))
	}
	if cc.Any && len(cc.Keys) > 0 {
		errs = append(errs, errors.New("has \"*\" and keys: \"*\" allows any client, so it must be the only entry"))
	}
	if !cc.Any && len(cc.Keys) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("lists no key: add one Z85 public key per line, or \"*\" for any client with a key pair"))
	}
	if err := errors.Join(errs...); err != nil {
		return CurveClients{}, fmt.Errorf("%w: curve clients file %s:\n%w", ErrCurveFile, path, err)
	}
	return cc, nil
}

func clipString(s string) string {
	if len(s) > 48 {
		return s[:48] + "..."
	}
	return s
}
