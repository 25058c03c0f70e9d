//go:build unix

package broker

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
	"golang.org/x/sys/unix"
)

// socketWaiter parks the goroutine that owns a ZeroMQ socket until the
// socket may have something to read, in Go's network poller rather than
// in a blocking cgo call.
//
// Why: a goroutine blocked in zmq_poll holds an OS thread in cgo, so under
// load the runtime's monitor (sysmon) keeps taking its processor away and
// handing it to another thread, and wakes every 20 µs to do so. With this
// waiter the only cgo calls are short non-blocking ones.
//
// ZMQ_FD only signals that the socket's state may have changed, edge
// triggered; libzmq signals it again whenever a command reaches a socket
// that found its command queue empty. So wait asks ready (which looks at
// ZMQ_EVENTS, processing those commands) after arming the poller: a
// signal that comes after that check wakes the wait.
type socketWaiter struct {
	f     *os.File
	rc    syscall.RawConn
	ready func() bool
	check func(uintptr) bool
}

// newSocketWaiter watches sock's ZMQ_FD through a duplicate descriptor, so
// closing the waiter never closes libzmq's own.
func newSocketWaiter(sock *zmq.Socket) (*socketWaiter, error) {
	fd, err := sock.GetFd()
	if err != nil {
		return nil, fmt.Errorf("broker: socket descriptor: %w", err)
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("broker: socket descriptor: %w", err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("broker: socket descriptor: %w", err)
	}
	w := &socketWaiter{f: os.NewFile(uintptr(dup), "zmq-fd")}
	if w.rc, err = w.f.SyscallConn(); err != nil {
		w.f.Close()
		return nil, fmt.Errorf("broker: socket descriptor: %w", err)
	}
	w.check = func(uintptr) bool { return w.ready() }
	return w, nil
}

// wait returns once ready() is true, checked at once and after each
// signal of the socket's descriptor; after timeout (0: none), or after
// interrupt, with timedOut true; or once the waiter is closed
// (errClosedWaiter). Only the socket's owner waits.
func (w *socketWaiter) wait(timeout time.Duration, ready func() bool) (timedOut bool, err error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if err := w.f.SetReadDeadline(deadline); err != nil {
		return false, w.closedOr(err)
	}
	w.ready = ready
	err = w.rc.Read(w.check)
	w.ready = nil
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return true, nil
		}
		return false, w.closedOr(err)
	}
	return false, nil
}

// interrupt ends the wait in progress, or the next one if none is: any
// goroutine may call it (it moves the read deadline into the past).
func (w *socketWaiter) interrupt() { _ = w.f.SetReadDeadline(time.Unix(1, 0)) }

func (w *socketWaiter) closedOr(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return errClosedWaiter
	}
	return err
}

// close ends a wait in progress; any goroutine may call it.
func (w *socketWaiter) close() { w.f.Close() }
