//go:build !unix

package broker

import (
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// socketWaiter without a pollable descriptor (see zmqwait_unix.go): it
// asks ready every millisecond.
type socketWaiter struct {
	once        sync.Once
	closed      chan struct{}
	interrupted chan struct{}
}

func newSocketWaiter(*zmq.Socket) (*socketWaiter, error) {
	return &socketWaiter{closed: make(chan struct{}), interrupted: make(chan struct{}, 1)}, nil
}

func (w *socketWaiter) wait(timeout time.Duration, ready func() bool) (timedOut bool, err error) {
	var end <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		end = t.C
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !ready() {
		select {
		case <-w.closed:
			return false, errClosedWaiter
		case <-w.interrupted:
			return true, nil
		case <-end:
			return true, nil
		case <-tick.C:
		}
	}
	return false, nil
}

func (w *socketWaiter) interrupt() {
	select {
	case w.interrupted <- struct{}{}:
	default:
	}
}

func (w *socketWaiter) close() { w.once.Do(func() { close(w.closed) }) }
