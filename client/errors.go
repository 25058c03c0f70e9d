package client

import (
	"errors"

	"github.com/raftmq/raftmq/broker/wire"
)

// Sentinel errors. Errors returned by a Client wrap one of these (or are a
// *ServerError, which matches the sentinel of its code via errors.Is).
var (
	// ErrNoServers: Options.Servers was empty.
	ErrNoServers = errors.New("client: no servers given")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrNoLeader: the cluster had no leader the whole time the request was
	// retried (elections in progress, or no majority up).
	ErrNoLeader = errors.New("client: no leader")
	// ErrTimeout: the request got no answer in time. Its outcome is unknown;
	// a state-changing request was sent with one client_id/seq, so it was
	// executed at most once.
	ErrTimeout = errors.New("client: timed out")
	// ErrShuttingDown: the server was stopping and did not execute the request.
	ErrShuttingDown = errors.New("client: server shutting down")
	// ErrUnreachable: no connection to the server could be made in time.
	ErrUnreachable = errors.New("client: server unreachable")
	// ErrBadResponse: the server's reply was not a raftmq response.
	ErrBadResponse = errors.New("client: malformed response")
	// ErrStaleReceipt: Ack, Nack or Extend named a delivery that is no
	// longer current (its lease ended, or its message was acked,
	// dead-lettered or delivered again). Nothing changed.
	ErrStaleReceipt = errors.New("client: stale receipt")
)

// ServerError is a request the server refused without executing it (or, for
// code "timeout", whose outcome it could not tell in time).
type ServerError struct {
	Code   string // a wire.Err... code such as "bad_request"
	Detail string // the server's human explanation
	Leader string // the not_leader hint, "" when unknown
	Server string // the server that answered, "ip:port"
}

func (e *ServerError) Error() string {
	msg := "client: server " + e.Server + " answered " + e.Code
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Is makes errors.Is(err, ErrNoLeader) etc. true for the matching codes.
func (e *ServerError) Is(target error) bool {
	switch target {
	case ErrNoLeader:
		return e.Code == wire.ErrNoLeader || (e.Code == wire.ErrNotLeader && e.Leader == "")
	case ErrTimeout:
		return e.Code == wire.ErrTimeout
	case ErrShuttingDown:
		return e.Code == wire.ErrShuttingDown
	case ErrStaleReceipt:
		return e.Code == wire.ErrStaleReceipt
	}
	return false
}
