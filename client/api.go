package client

import (
	"context"
	"fmt"

	"github.com/raftmq/raftmq/broker/wire"
)

func (c *Client) call(ctx context.Context, req wire.Request, mutates bool) (wire.Response, error) {
	return c.do(ctx, req, mutates)
}

// CreateTopic creates a topic. created is false when it already exists.
func (c *Client) CreateTopic(ctx context.Context, name string) (created bool, err error) {
	r, err := c.call(ctx, wire.Request{Type: wire.TypeTopic, Method: wire.MethodPut, Topic: name}, true)
	if err != nil {
		return false, fmt.Errorf("create topic %q: %w", name, err)
	}
	return r.Success, nil
}

// ListTopics returns every topic in creation order (a linearizable read).
func (c *Client) ListTopics(ctx context.Context) ([]string, error) {
	r, err := c.call(ctx, wire.Request{Type: wire.TypeTopic, Method: wire.MethodGet}, false)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	if !r.Success || r.Topics == nil {
		return nil, fmt.Errorf("%w: list topics: success=%v without a topics list", ErrBadResponse, r.Success)
	}
	return *r.Topics, nil
}

// Put appends msg to topic. ok is false when the topic does not exist.
func (c *Client) Put(ctx context.Context, topic, msg string) (ok bool, err error) {
	r, err := c.call(ctx, wire.Request{Type: wire.TypeMessage, Method: wire.MethodPut, Topic: topic, Message: msg}, true)
	if err != nil {
		return false, fmt.Errorf("put to %q: %w", topic, err)
	}
	return r.Success, nil
}

// Pop removes and returns the oldest message of topic. ok is false when the
// topic does not exist or is empty.
func (c *Client) Pop(ctx context.Context, topic string) (msg string, ok bool, err error) {
	return c.pop(ctx, wire.Request{Type: wire.TypeMessage, Method: wire.MethodGet, Topic: topic})
}

// pop sends a GET (with or without a wait) and reads its answer.
func (c *Client) pop(ctx context.Context, req wire.Request) (msg string, ok bool, err error) {
	topic := req.Topic
	r, err := c.call(ctx, req, true)
	if err != nil {
		return "", false, fmt.Errorf("pop from %q: %w", topic, err)
	}
	if !r.Success {
		return "", false, nil
	}
	if r.Message == nil {
		return "", false, fmt.Errorf("%w: pop from %q: success without a message", ErrBadResponse, topic)
	}
	return *r.Message, true, nil
}
