package clienttest

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/raftmq/raftmq/broker/wire"
)

// Memory is a Handler with a single node's semantics in memory: topics in
// creation order, FIFO queues, sessions (a retried client_id/seq gets the
// first answer), and status counters that count one fsync per entry. It
// leases too, but its leases never end, it never waits (wait_ms) and it has
// no delivery limits.
type Memory struct {
	mu       sync.Mutex
	order    []string
	queues   map[string][]string
	sessions map[string]session
	entries  uint64

	leases     map[string]lease  // receipt -> leased message
	deliveries map[string]uint64 // message -> deliveries (messages must be unique to count right)
	receipts   uint64
}

type lease struct{ topic, msg string }

type session struct {
	seq   uint64
	reply string
}

// NewMemory returns an empty Memory; use m.Handle as a Broker's handler.
func NewMemory() *Memory {
	return &Memory{queues: map[string][]string{}, sessions: map[string]session{}, leases: map[string]lease{}, deliveries: map[string]uint64{}}
}

// Handle answers req.
func (m *Memory) Handle(req wire.Request) Step {
	m.mu.Lock()
	defer m.mu.Unlock()
	if req.Type == wire.TypeStatus {
		st := wire.Status{Role: "Leader", Term: 1, Commit: m.entries, Applied: m.entries, LastIndex: m.entries,
			LogSyncs: m.entries, LogEntries: m.entries, Ready: true,
			DataBytes: 3 << 20, DiskFreeBytes: 5 << 30, DiskTotalBytes: 20 << 30, MinFreeBytes: 256 << 20}
		return Step{Reply: mustJSON(st)}
	}
	if req.Method == wire.MethodInfo {
		if _, ok := m.queues[req.Topic]; !ok {
			return Step{Reply: mustJSON(wire.Fail())}
		}
		info := wire.TopicInfo{Name: req.Topic, Ready: uint64(len(m.queues[req.Topic]))}
		for _, l := range m.leases {
			if l.topic == req.Topic {
				info.Leased++
			}
		}
		return Step{Reply: mustJSON(wire.Response{Success: true, Info: &info})}
	}
	if !req.Mutates() {
		topics := append([]string{}, m.order...)
		return Step{Reply: mustJSON(wire.Response{Success: true, Topics: &topics})}
	}
	if req.HasSession {
		if s, ok := m.sessions[req.ClientID]; ok && s.seq == req.Seq {
			return Step{Reply: s.reply}
		}
	}
	m.entries++
	reply := mustJSON(m.applyLocked(req))
	if req.HasSession {
		m.sessions[req.ClientID] = session{seq: req.Seq, reply: reply}
	}
	return Step{Reply: reply}
}

func (m *Memory) applyLocked(req wire.Request) wire.Response {
	q, exists := m.queues[req.Topic]
	switch {
	case req.Type == wire.TypeTopic:
		if exists {
			return wire.Fail()
		}
		m.queues[req.Topic] = nil
		m.order = append(m.order, req.Topic)
	case !exists:
		return wire.Fail()
	case req.Method == wire.MethodPut:
		m.queues[req.Topic] = append(q, req.Message)
	case req.Method == wire.MethodAck, req.Method == wire.MethodNack, req.Method == wire.MethodExtend:
		l, ok := m.leases[req.Receipt]
		if !ok || l.topic != req.Topic {
			return wire.ErrorResponse(wire.ErrStaleReceipt, "no such lease")
		}
		if req.Method == wire.MethodExtend {
			break
		}
		delete(m.leases, req.Receipt)
		if req.Method == wire.MethodNack {
			m.queues[req.Topic] = append([]string{l.msg}, q...)
		}
	case req.Method == wire.MethodReceive:
		if len(q) == 0 {
			return wire.Fail()
		}
		msg := q[0]
		m.queues[req.Topic] = q[1:]
		m.receipts++
		receipt := fmt.Sprintf("r%d", m.receipts)
		m.leases[receipt] = lease{req.Topic, msg}
		m.deliveries[msg]++
		n := m.deliveries[msg]
		return wire.Response{Success: true, Message: &msg, Receipt: &receipt, Deliveries: &n}
	default:
		if len(q) == 0 {
			return wire.Fail()
		}
		msg := q[0]
		m.queues[req.Topic] = q[1:]
		return wire.Response{Success: true, Message: &msg}
	}
	return wire.OK()
}

// Leased returns the number of leased messages of topic.
func (m *Memory) Leased(topic string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, l := range m.leases {
		if l.topic == topic {
			n++
		}
	}
	return n
}

// Depth returns the number of queued messages of topic.
func (m *Memory) Depth(topic string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queues[topic])
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
