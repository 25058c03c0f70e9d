package client

import (
	"context"
	"fmt"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
)

// Delivery is a message received under a lease.
type Delivery struct {
	Message string
	// Receipt names this delivery for Ack, Nack and Extend; it is refused
	// (ErrStaleReceipt) once the lease ended or the message was acked,
	// dead-lettered or delivered again.
	Receipt string
	// Deliveries counts this message's deliveries, 1 the first time.
	Deliveries uint64
}

// ReceiveOptions tunes Receive. Zero values take the broker's defaults.
type ReceiveOptions struct {
	Lease time.Duration // how long the message stays invisible (default 30 s; 100 ms to 12 h)
	Wait  time.Duration // wait up to this long for a message (0: answer at once; at most 20 s)
}

// TopicOptions are a topic's delivery settings.
type TopicOptions struct {
	// MaxDeliveries > 0 moves a message to DeadLetter (which must exist)
	// when its MaxDeliveries-th delivery is nacked or its lease ends.
	MaxDeliveries uint64
	DeadLetter    string
}

func millis(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Millisecond - 1) / time.Millisecond)
}

// CreateTopicWith creates a topic with delivery settings. created is false
// when it already exists.
func (c *Client) CreateTopicWith(ctx context.Context, name string, o TopicOptions) (created bool, err error) {
	req := wire.Request{Type: wire.TypeTopic, Method: wire.MethodPut, Topic: name, MaxDeliveries: o.MaxDeliveries, DeadLetter: o.DeadLetter}
	r, err := c.call(ctx, req, true)
	if err != nil {
		return false, fmt.Errorf("create topic %q: %w", name, err)
	}
	return r.Success, nil
}

// Receive leases the oldest ready message of topic. ok is false when the
// topic does not exist or nothing was ready within o.Wait.
func (c *Client) Receive(ctx context.Context, topic string, o ReceiveOptions) (d Delivery, ok bool, err error) {
	req := wire.Request{Type: wire.TypeMessage, Method: wire.MethodReceive, Topic: topic, LeaseMs: millis(o.Lease), WaitMs: millis(o.Wait)}
	r, err := c.call(ctx, req, true)
	if err != nil {
		return Delivery{}, false, fmt.Errorf("receive from %q: %w", topic, err)
	}
	if !r.Success {
		return Delivery{}, false, nil
	}
	if r.Message == nil || r.Receipt == nil || r.Deliveries == nil {
		return Delivery{}, false, fmt.Errorf("%w: receive from %q: success without message, receipt and deliveries", ErrBadResponse, topic)
	}
	return Delivery{Message: *r.Message, Receipt: *r.Receipt, Deliveries: *r.Deliveries}, true, nil
}

// PopWait is Pop that waits up to wait for a message to arrive.
func (c *Client) PopWait(ctx context.Context, topic string, wait time.Duration) (msg string, ok bool, err error) {
	return c.pop(ctx, wire.Request{Type: wire.TypeMessage, Method: wire.MethodGet, Topic: topic, WaitMs: millis(wait)})
}

// Ack removes the message of receipt. A receipt whose lease ended, or
// whose message was acked, dead-lettered or delivered again, gives an error
// matching ErrStaleReceipt, and nothing changes.
func (c *Client) Ack(ctx context.Context, topic, receipt string) error {
	return c.settle(ctx, "ack", wire.Request{Type: wire.TypeMessage, Method: wire.MethodAck, Topic: topic, Receipt: receipt})
}

// Nack makes the message of receipt ready again, after delay if > 0 (or
// moves it to the dead-letter topic after its last allowed delivery).
func (c *Client) Nack(ctx context.Context, topic, receipt string, delay time.Duration) error {
	return c.settle(ctx, "nack", wire.Request{Type: wire.TypeMessage, Method: wire.MethodNack, Topic: topic, Receipt: receipt, DelayMs: millis(delay)})
}

// Extend makes the lease of receipt end lease from now (0: the default).
func (c *Client) Extend(ctx context.Context, topic, receipt string, lease time.Duration) error {
	return c.settle(ctx, "extend", wire.Request{Type: wire.TypeMessage, Method: wire.MethodExtend, Topic: topic, Receipt: receipt, LeaseMs: millis(lease)})
}

func (c *Client) settle(ctx context.Context, what string, req wire.Request) error {
	r, err := c.call(ctx, req, true)
	if err != nil {
		return fmt.Errorf("%s on %q: %w", what, req.Topic, err)
	}
	if !r.Success {
		return fmt.Errorf("%s on %q: %w", what, req.Topic, ErrStaleReceipt)
	}
	return nil
}

// TopicInfo returns a topic's ready, leased and delayed counts and its
// delivery settings (a linearizable read). ok is false when it does not
// exist.
func (c *Client) TopicInfo(ctx context.Context, name string) (info wire.TopicInfo, ok bool, err error) {
	r, err := c.call(ctx, wire.Request{Type: wire.TypeTopic, Method: wire.MethodInfo, Topic: name}, false)
	if err != nil {
		return wire.TopicInfo{}, false, fmt.Errorf("topic info %q: %w", name, err)
	}
	if !r.Success {
		return wire.TopicInfo{}, false, nil
	}
	if r.Info == nil {
		return wire.TopicInfo{}, false, fmt.Errorf("%w: topic info %q: success without info", ErrBadResponse, name)
	}
	return *r.Info, true, nil
}
