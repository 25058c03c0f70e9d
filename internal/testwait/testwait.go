// Package testwait is the tests' one way to wait for a condition that
// another goroutine or process brings about: poll it, with a short
// interval that grows, until it holds or a deadline passes. Tests only.
package testwait

import (
	"testing"
	"time"
)

// maxInterval bounds the pause between two polls.
const maxInterval = 50 * time.Millisecond

// For polls cond until it returns true, or fails the test after timeout
// saying it was waiting for what.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	Err(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// Err polls check until it returns nil, or fails the test after timeout
// with check's last error.
func Err(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			if err == errNotYet {
				t.Fatalf("timed out after %v waiting for %s", timeout, what)
			} else {
				t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
			}
			return // Fatalf does not return; a testing.TB wrapper's may
		}
		time.Sleep(interval)
		interval = min(2*interval, maxInterval)
	}
}

// notYet is For's condition not holding yet.
type notYet struct{}

func (notYet) Error() string { return "not yet" }

var errNotYet error = notYet{}
