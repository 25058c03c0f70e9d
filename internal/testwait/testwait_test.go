package testwait

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that records a Fatalf instead of stopping.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	for _, a := range args {
		r.failed += " " + toString(a)
	}
}

func toString(a any) string {
	if s, ok := a.(interface{ String() string }); ok {
		return s.String()
	}
	if e, ok := a.(error); ok {
		return e.Error()
	}
	if s, ok := a.(string); ok {
		return s
	}
	return ""
}

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 5 {
			n.Add(1)
		}
	}()
	For(t, 10*time.Second, "five increments", func() bool { return n.Load() == 5 })
}

func TestForFailsAfterTheTimeoutNamingWhat(t *testing.T) {
	r := &recorder{TB: t}
	For(r, 20*time.Millisecond, "the impossible", func() bool { return false })
	if !strings.Contains(r.failed, "the impossible") {
		t.Fatalf("failure %q does not name what it waited for", r.failed)
	}
}

func TestErrReportsTheLastError(t *testing.T) {
	r := &recorder{TB: t}
	Err(r, 20*time.Millisecond, "a server", func() error { return errors.New("connection refused") })
	if !strings.Contains(r.failed, "connection refused") || !strings.Contains(r.failed, "a server") {
		t.Fatalf("failure %q lacks the last error or what", r.failed)
	}
}
