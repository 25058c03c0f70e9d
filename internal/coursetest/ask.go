package coursetest

import (
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Ask sends one frame on a fresh REQ socket, as a course client does, and
// returns the reply's bytes as they arrived; no reply within timeout is an
// error.
func Ask(addr, frame string, timeout time.Duration) ([]byte, error) {
	s, err := zmq.NewSocket(zmq.REQ)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	for _, set := range []func() error{
		func() error { return s.SetLinger(0) },
		func() error { return s.SetRcvtimeo(timeout) },
		func() error { return s.Connect("tcp://" + addr) },
	} {
		if err := set(); err != nil {
			return nil, err
		}
	}
	if _, err := s.Send(frame, 0); err != nil {
		return nil, err
	}
	reply, err := s.RecvBytes(0)
	if err != nil {
		return nil, fmt.Errorf("no reply from %s to %s within %s: %w", addr, frame, timeout, err)
	}
	return reply, nil
}
