package broker

import (
	"errors"
	"sync"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// socketPollInterval bounds how long a socket-owning goroutine waits
// before it looks at its socket and its done channel again, whatever its
// descriptor says.
const socketPollInterval = 100 * time.Millisecond

// errClosedWaiter: the socketWaiter was closed.
var errClosedWaiter = errors.New("broker: socket waiter closed")

// pollLoop is the loop of a goroutine that owns sock: each time sock is
// readable it calls ready, which drains what it can without blocking. It
// waits in Go's poller (socketWaiter), not in zmq_poll. It returns once done is
// closed or the socket's context is terminated. (The peer receiver, the
// connection limiter's monitor and the ZAP handler each own one socket
// this way.)
func pollLoop(done <-chan struct{}, sock *zmq.Socket, ready func()) {
	w, err := newSocketWaiter(sock)
	if err != nil {
		pollLoopZMQ(done, sock, ready)
		return
	}
	defer w.close()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-done:
			w.close()
		case <-stopped:
		}
	}()
	var sockErr error
	isReadable := func() bool {
		ev, err := sock.GetEvents()
		if err != nil {
			sockErr = err
			return true
		}
		return ev&zmq.POLLIN != 0
	}
	for {
		select {
		case <-done:
			return
		default:
		}
		ready()
		if _, err := w.wait(socketPollInterval, isReadable); errors.Is(err, errClosedWaiter) {
			return
		}
		if sockErr != nil && !errors.Is(sockErr, zmq.Errno(syscall.EINTR)) {
			return // the context is terminated or the socket closed
		}
		sockErr = nil
	}
}

// pollLoopZMQ is pollLoop with zmq_poll, for a socket whose descriptor
// cannot be watched.
func pollLoopZMQ(done <-chan struct{}, sock *zmq.Socket, ready func()) {
	poller := zmq.NewPoller()
	poller.Add(sock, zmq.POLLIN)
	for {
		select {
		case <-done:
			return
		default:
		}
		polled, err := poller.Poll(socketPollInterval)
		if err != nil {
			if errors.Is(err, zmq.ETERM) {
				return
			}
			continue
		}
		if len(polled) > 0 {
			ready()
		}
	}
}

// socketOwner runs one goroutine that owns a socket (pollLoop) and stops
// it: the connection limiter and the ZAP handler embed it.
type socketOwner struct {
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// start runs pollLoop on sock in a new goroutine, which closes sock when
// it ends.
func (o *socketOwner) start(sock *zmq.Socket, ready func()) {
	o.done = make(chan struct{})
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		defer sock.Close()
		pollLoop(o.done, sock, ready)
	}()
}

// stop ends the goroutine and waits until it closed its socket. Safe more
// than once, and before start.
func (o *socketOwner) stop() {
	o.once.Do(func() {
		if o.done != nil {
			close(o.done)
		}
	})
	o.wg.Wait()
}
