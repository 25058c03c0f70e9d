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
	_, raw, err := c.askOne(ctx, server, wire.Request{Type: wire.TypeStatus, Method: wire.MethodGet})
	if err != nil {
		return wire.Status{}, fmt.Errorf("status of %s: %w", server, err)
	}
	var st wire.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return wire.Status{}, fmt.Errorf("%w: status of %s: %w", ErrBadResponse, server, err)
	}
	return st, nil
}

// Snapshot makes one server take a snapshot of its state now and compact
// its log, and returns the snapshot's index. Like Status it asks that
// server only, once: the operator should see which server failed.
func (c *Client) Snapshot(ctx context.Context, server string) (index uint64, err error) {
	resp, _, err := c.askOne(ctx, server, wire.Request{Type: wire.TypeSnapshot, Method: wire.MethodPut})
	if err != nil {
		return 0, fmt.Errorf("snapshot of %s: %w", server, err)
	}
	if !resp.Success || resp.Index == nil {
		return 0, fmt.Errorf("%w: snapshot of %s: success=%v without an index", ErrBadResponse, server, resp.Success)
	}
	return *resp.Index, nil
}

// askOne sends req to server alone, on a connection of its own, and returns
// the reply, decoded and raw, of a request the server executed; a refusal
// is a *ServerError.
func (c *Client) askOne(ctx context.Context, server string, req wire.Request) (wire.Response, []byte, error) {
	ctx, cancel := c.withTimeout(ctx, 0)
	defer cancel()
	cn, err := dial(server, c.opts.Curve)
	if err != nil {
		return wire.Response{}, nil, err
	}
	defer cn.close()
	req.ClientID = c.opts.ClientID
	raw, err := cn.roundTrip(ctx, c.abortCh, wire.EncodeRequest(req), c.opts.ConnectTimeout, c.opts.AttemptTimeout)
	if err != nil {
		return wire.Response{}, nil, err
	}
	resp, err := wire.DecodeResponse(raw)
	if err != nil {
		return wire.Response{}, nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if resp.Refused() {
		return wire.Response{}, nil, &ServerError{Code: resp.Error, Detail: resp.Detail, Leader: resp.Leader, Server: server}
	}
	return resp, raw, nil
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
