package metrics

import "github.com/raftmq/raftmq/broker/wire"

// Kind is a request's type and method, as a small number so the hot path
// indexes pre-built counters instead of hashing label values.
type Kind uint8

// The request kinds. KindInvalid is a request whose type or method could
// not be decoded.
const (
	KindTopicPut Kind = iota
	KindTopicGet
	KindMessagePut
	KindMessageGet
	KindStatus
	KindSnapshot
	KindMessageReceive
	KindMessageAck
	KindMessageNack
	KindMessageExtend
	KindTopicInfo
	KindInvalid
	numKinds
)

var kindLabels = [numKinds][2]string{
	{wire.TypeTopic, wire.MethodPut},
	{wire.TypeTopic, wire.MethodGet},
	{wire.TypeMessage, wire.MethodPut},
	{wire.TypeMessage, wire.MethodGet},
	{wire.TypeStatus, wire.MethodGet},
	{wire.TypeSnapshot, wire.MethodPut},
	{wire.TypeMessage, wire.MethodReceive},
	{wire.TypeMessage, wire.MethodAck},
	{wire.TypeMessage, wire.MethodNack},
	{wire.TypeMessage, wire.MethodExtend},
	{wire.TypeTopic, wire.MethodInfo},
	{"invalid", "invalid"},
}

func (k Kind) labels() (typ, method string) { return kindLabels[k][0], kindLabels[k][1] }

// KindOf maps a request's type and method to its Kind.
func KindOf(typ, method string) Kind {
	for k := Kind(0); k < KindInvalid; k++ {
		if kindLabels[k][0] == typ && kindLabels[k][1] == method {
			return k
		}
	}
	return KindInvalid
}

// Outcome is how a request was answered: ok, no, or its error code.
type Outcome uint8

// numOutcomes counts outcomeLabels.
const numOutcomes = Outcome(len(outcomeLabels))

// outcomeLabels: "ok", "no", then every error code of the protocol, then
// "other" for a code this package does not know (a newer broker/wire).
var outcomeLabels = [...]string{
	"ok", "no",
	wire.ErrBadRequest, wire.ErrNotLeader, wire.ErrNoLeader, wire.ErrTooLarge,
	wire.ErrTimeout, wire.ErrShuttingDown, wire.ErrInternal, wire.ErrOverloaded,
	wire.ErrStaleSeq, wire.ErrStaleReceipt, wire.ErrDiskFull, wire.ErrMemberRefused,
	"other",
}

// OutcomeOf classifies an answer.
func OutcomeOf(r wire.Response) Outcome {
	switch {
	case r.Error != "":
		for o := Outcome(2); o < numOutcomes-1; o++ {
			if outcomeLabels[o] == r.Error {
				return o
			}
		}
		return numOutcomes - 1
	case r.Success:
		return 0
	}
	return 1
}

// OutcomeOK is the outcome of an answered status request.
const OutcomeOK Outcome = 0
