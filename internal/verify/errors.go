package verify

import "errors"

var (
	// ErrNoNetns: network namespaces cannot be made here (not root, or ip /
	// iptables missing); network fault families are skipped.
	ErrNoNetns = errors.New("chaos: network namespaces unavailable")
	// ErrConfig: a Config field is out of range.
	ErrConfig = errors.New("chaos: bad config")
	// ErrViolation: a checker found a violation; the Report says which.
	ErrViolation = errors.New("chaos: violation found")
)
