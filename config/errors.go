package config

import (
	"errors"
	"strings"
)

var (
	// ErrInvalid is wrapped by every validation problem: a value out of its
	// bounds, a cluster file whose content is wrong. Test with errors.Is.
	ErrInvalid = errors.New("config: invalid")
	// ErrClusterFile is wrapped by LoadCluster when the cluster file cannot be
	// read or is not valid JSON (the os error, e.g. fs.ErrNotExist, is wrapped
	// too).
	ErrClusterFile = errors.New("config: cannot load cluster file")
	// ErrCurveFile is wrapped by LoadCurveSecret and LoadCurveClients when a
	// key file cannot be read, is open to others, or holds a malformed key.
	ErrCurveFile = errors.New("config: bad CURVE key file")
)

// FieldError is one validation problem. Field is the snake_case option name
// ("election_ticks", "addresses[1].port"); Problem says what is wrong with the
// value and what is allowed. It wraps ErrInvalid.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(e.Field)
	b.WriteString(" ")
	b.WriteString(e.Problem)
	if f, env, ok := optionNames(e.Field); ok {
		b.WriteString(" (flag --")
		b.WriteString(f)
		b.WriteString(", env ")
		b.WriteString(env)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// optionNames returns the CLI flag and env var of a Node option field, or
// ok=false for fields that come from the cluster file.
func optionNames(field string) (flag, env string, ok bool) {
	if strings.ContainsAny(field, "[.") || field == "addresses" || field == "cluster_id" {
		return "", "", false
	}
	return strings.ReplaceAll(field, "_", "-"), "RAFTMQ_" + strings.ToUpper(field), true
}
