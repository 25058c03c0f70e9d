package client

import (
	"context"
	"fmt"

	"github.com/raftmq/raftmq/broker/wire"
)

// Members lists the cluster's members as the leader sees them.
func (c *Client) Members(ctx context.Context) ([]wire.Member, error) {
	r, err := c.call(ctx, wire.Request{Type: wire.TypeMember, Method: wire.MethodGet}, false)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	if !r.Success || r.Members == nil {
		return nil, fmt.Errorf("%w: list members: success=%v without a members list", ErrBadResponse, r.Success)
	}
	return *r.Members, nil
}

// AddLearner adds node id, reachable at the addresses in m, as a learner:
// it receives the log but does not vote until PromoteMember. It returns
// once the change is committed. A refusal (already a member, an id removed
// before, another change in progress) is a *ServerError with code
// wire.ErrMemberRefused.
func (c *Client) AddLearner(ctx context.Context, m wire.MemberSpec) error {
	m.Role = wire.RoleLearner
	if _, err := c.call(ctx, wire.Request{Type: wire.TypeMember, Method: wire.MethodPut, Member: m}, false); err != nil {
		return fmt.Errorf("add node %d as a learner: %w", m.ID, err)
	}
	return nil
}

// PromoteMember makes learner id a voter; the leader refuses
// (wire.ErrMemberRefused) while it lags.
func (c *Client) PromoteMember(ctx context.Context, id int) error {
	if _, err := c.call(ctx, wire.Request{Type: wire.TypeMember, Method: wire.MethodPut, Member: wire.MemberSpec{ID: id, Role: wire.RoleVoter}}, false); err != nil {
		return fmt.Errorf("promote node %d: %w", id, err)
	}
	return nil
}

// RemoveMember removes node id (a voter, a learner, or the leader itself)
// and returns once the change is committed.
func (c *Client) RemoveMember(ctx context.Context, id int) error {
	if _, err := c.call(ctx, wire.Request{Type: wire.TypeMember, Method: wire.MethodDelete, Member: wire.MemberSpec{ID: id}}, false); err != nil {
		return fmt.Errorf("remove node %d: %w", id, err)
	}
	return nil
}
