package broker

import (
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/metrics"
)

// replyTo is where and how to answer one request: its ROUTER envelope
// (identity, and the empty delimiter if the client sent one) and the
// dialect the request spoke (wire.Dialect).
type replyTo struct {
	frames  [][]byte
	dialect wire.Dialect
	// kind and start label the request's answer in the metrics.
	kind  metrics.Kind
	start time.Time
}

// clone copies the envelope out of buffers zmq may reuse.
func (to replyTo) clone() replyTo {
	out := replyTo{frames: make([][]byte, len(to.frames)), dialect: to.dialect, kind: to.kind, start: to.start}
	for i, f := range to.frames {
		out.frames[i] = append([]byte(nil), f...)
	}
	return out
}

// Refusals of course requests are logged at most refusalLogBurst times per
// refusalLogPeriod: a course client that keeps sending bad input must not
// flood the log.
const (
	refusalLogBurst  = 5
	refusalLogPeriod = 10 * time.Second
)

// refusals shapes every answer for its request's dialect. A course request
// that is refused gets {"success":false}; the reason it does not see is
// counted (status "refused") and logged at debug level, sampled. Safe for
// concurrent use: the client server and the node loop share one.
type refusals struct {
	count *atomic.Uint64
	log   zerolog.Logger
}

func newRefusals(count *atomic.Uint64, log zerolog.Logger) *refusals {
	return &refusals{count: count, log: log.Sample(&zerolog.BurstSampler{Burst: refusalLogBurst, Period: refusalLogPeriod})}
}

func (r *refusals) shape(to replyTo, resp wire.Response) wire.Response {
	if to.dialect != wire.DialectCourse || !resp.Refused() {
		return resp
	}
	r.count.Add(1)
	r.log.Debug().Str("error", resp.Error).Str("detail", resp.Detail).Str("leader", resp.Leader).
		Msg("course request refused; answered {\"success\":false}")
	return resp.In(to.dialect)
}
