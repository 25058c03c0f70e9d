package client

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/raftmq/raftmq/broker/wire"
)

// NodeStatus is one server's answer to StatusAll.
type NodeStatus struct {
	Server string      // as configured, "ip:port"
	Status wire.Status // valid when Err is nil
	Err    error
}

// Status asks one server for its status: no redirect, no retry, on a socket
// of its own (it does not wait for other requests of this Client).
func (c *Client) Status(ctx context.Context, server string) (wire.Status, error) {
	ctx, cancel := c.withTimeout(ctx, 0)
	defer cancel()
	cn, err := dial(server)
	if err != nil {
		return wire.Status{}, err
	}
	defer cn.close()
	frame := wire.EncodeRequest(wire.Request{ClientID: c.opts.ClientID, Type: wire.TypeStatus, Method: wire.MethodGet})
	raw, err := cn.roundTrip(ctx, c.abortCh, frame, c.opts.ConnectTimeout, c.opts.AttemptTimeout)
	if err != nil {
		return wire.Status{}, fmt.Errorf("status of %s: %w", server, err)
	}
	resp, err := wire.DecodeResponse(raw)
	if err != nil {
		return wire.Status{}, fmt.Errorf("%w: status of %s: %w", ErrBadResponse, server, err)
	}
	if resp.Refused() {
		return wire.Status{}, &ServerError{Code: resp.Error, Detail: resp.Detail, Leader: resp.Leader, Server: server}
	}
	var st wire.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return wire.Status{}, fmt.Errorf("%w: status of %s: %w", ErrBadResponse, server, err)
	}
	return st, nil
}

// StatusAll asks every configured server in parallel. A server that cannot
// answer has Err set; err is non-nil only when ctx ended first.
func (c *Client) StatusAll(ctx context.Context) ([]NodeStatus, error) {
	out := make([]NodeStatus, len(c.opts.Servers))
	var wg sync.WaitGroup
	for i, s := range c.opts.Servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := c.Status(ctx, s)
			out[i] = NodeStatus{Server: s, Status: st, Err: err}
		}()
	}
	wg.Wait()
	return out, ctx.Err()
}
