package broker

import (
	"errors"
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
