package storage

// model is the obvious in-memory topic store with sessions, used to check
// StateDB.
type model struct {
	order       []string
	queues      map[string][]string
	sessions    map[string]*modelSession
	maxSessions int
}

type modelSession struct {
	seq, lastUse uint64
	result       Result
}

func newModel(maxSessions int) *model {
	return &model{queues: map[string][]string{}, sessions: map[string]*modelSession{}, maxSessions: maxSessions}
}

func (m *model) apply(index uint64, c Command) (Result, bool) {
	if c.ClientID == "" {
		return m.exec(c), false
	}
	if s, ok := m.sessions[c.ClientID]; ok {
		switch {
		case c.Seq == s.seq:
			s.lastUse = index
			return s.result, true
		case c.Seq < s.seq:
			return Result{StaleSeq: true}, false
		}
		s.seq, s.lastUse, s.result = c.Seq, index, m.exec(c)
		return s.result, false
	}
	r := m.exec(c)
	for len(m.sessions) >= m.maxSessions {
		var oldest string
		for id, s := range m.sessions {
			if oldest == "" || s.lastUse < m.sessions[oldest].lastUse {
				oldest = id
			}
		}
		delete(m.sessions, oldest)
	}
	m.sessions[c.ClientID] = &modelSession{seq: c.Seq, lastUse: index, result: r}
	return r, false
}

func (m *model) exec(c Command) Result {
	q, exists := m.queues[c.Topic]
	switch c.Op {
	case OpCreateTopic:
		if exists {
			return Result{}
		}
		m.order = append(m.order, c.Topic)
		m.queues[c.Topic] = []string{}
		return Result{Success: true}
	case OpPut:
		if !exists {
			return Result{}
		}
		m.queues[c.Topic] = append(q, c.Message)
		return Result{Success: true}
	case OpPop:
		if len(q) == 0 {
			return Result{}
		}
		m.queues[c.Topic] = q[1:]
		return Result{Success: true, Message: q[0], HasMessage: true}
	}
	panic("unknown op")
}

func (m *model) depths() []TopicDepth {
	out := []TopicDepth{}
	for _, name := range m.order {
		d := TopicDepth{Name: name, Depth: uint64(len(m.queues[name]))}
		for _, msg := range m.queues[name] {
			d.Bytes += uint64(len(msg))
		}
		out = append(out, d)
	}
	return out
}
