package broker

import (
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// TestSocketWaiterWakesOnMessage: a message sent while the owner waits,
// or between its last receive and its wait, ends the wait; a wait with
// nothing to read times out; interrupt ends a wait.
func TestSocketWaiterWakesOnMessage(t *testing.T) {
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	pull, _ := zctx.NewSocket(zmq.PULL)
	defer pull.Close()
	if err := pull.Bind("inproc://w"); err != nil {
		t.Fatal(err)
	}
	send := make(chan bool)
	sent := make(chan struct{})
	go func() { // owns push
		push, _ := zctx.NewSocket(zmq.PUSH)
		defer push.Close()
		if err := push.Connect("inproc://w"); err != nil {
			t.Error(err)
		}
		for later := range send {
			if later {
				time.Sleep(time.Millisecond) // let the owner park first
			}
			push.SendBytes([]byte("x"), 0)
			sent <- struct{}{}
		}
	}()
	defer close(send)
	w, err := newSocketWaiter(pull)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	isReadable := func() bool {
		ev, err := pull.GetEvents()
		return err != nil || ev&zmq.POLLIN != 0
	}
	drain := func() {
		for {
			if _, err := pull.RecvBytes(zmq.DONTWAIT); err != nil {
				return
			}
		}
	}
	for i := 0; i < 200; i++ {
		drain()
		later := i%2 == 0
		send <- later
		if !later {
			<-sent // sent before the wait starts
		}
		timedOut, err := w.wait(10*time.Second, isReadable)
		if err != nil || timedOut {
			t.Fatalf("round %d (sent while waiting: %v): timedOut=%v err=%v", i, later, timedOut, err)
		}
		if later {
			<-sent
		}
	}
	drain()
	if timedOut, err := w.wait(10*time.Millisecond, isReadable); err != nil || !timedOut {
		t.Fatalf("nothing to read: timedOut=%v err=%v, want a timeout", timedOut, err)
	}
	go w.interrupt()
	if timedOut, err := w.wait(time.Minute, isReadable); err != nil || !timedOut {
		t.Fatalf("interrupted: timedOut=%v err=%v", timedOut, err)
	}
}
