package broker

import (
	"errors"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// socketPollInterval bounds how long a socket-owning goroutine waits
// before it looks at its done channel again.
const socketPollInterval = 100 * time.Millisecond

// pollLoop is the loop of a goroutine that owns sock: each time sock is
// readable it calls ready, which drains what it can without blocking. It
// returns once done is closed or the socket's context is terminated.
// (The peer receiver, the connection limiter's monitor and the ZAP
// handler each own one socket this way.)
func pollLoop(done <-chan struct{}, sock *zmq.Socket, ready func()) {
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
