package raftlog

// mergeMessages folds the messages of one Ready so that each peer gets at
// most one append per run of appends: a MsgApp that continues the previous
// message to the same peer (same term, its Index right after that
// message's last entry) joins it while the entries stay within maxBytes
// (counted as limitSize counts them, data plus per-entry overhead), and a successful MsgAppResp replaces an earlier successful one
// to the same peer in the same term (the leader only needs the highest
// match). A message to another peer in between does not stop a merge; any
// other message to the same peer does. Entries are copied, never appended
// in place: they may share memory with the log.
func mergeMessages(msgs []Message, maxBytes uint64) []Message {
	if len(msgs) < 2 {
		return msgs
	}
	out := msgs[:0:0]
	last := map[uint64]int{} // peer → index in out of its latest message
	for _, m := range msgs {
		if i, ok := last[m.To]; ok {
			p := &out[i]
			if canMergeApp(p, &m, maxBytes) {
				ents := make([]Entry, 0, len(p.Entries)+len(m.Entries))
				p.Entries = append(append(ents, p.Entries...), m.Entries...)
				p.Commit = max(p.Commit, m.Commit)
				continue
			}
			if isPlainAck(p) && isPlainAck(&m) && p.Term == m.Term {
				p.Index = max(p.Index, m.Index)
				continue
			}
		}
		last[m.To] = len(out)
		out = append(out, m)
	}
	return out
}

func canMergeApp(p, m *Message, maxBytes uint64) bool {
	return p.Type == MsgApp && m.Type == MsgApp && p.Term == m.Term && p.From == m.From &&
		m.Index == p.Index+uint64(len(p.Entries)) &&
		(len(p.Entries) == 0 || m.LogTerm == p.Entries[len(p.Entries)-1].Term) &&
		(len(p.Entries) > 0 || m.LogTerm == p.LogTerm) &&
		messageSize(p.Entries)+messageSize(m.Entries) <= maxBytes
}

// isPlainAck: a successful MsgAppResp carrying nothing but its Index.
func isPlainAck(m *Message) bool {
	return m.Type == MsgAppResp && !m.Reject && m.Commit == 0 && m.LogTerm == 0 && m.RejectHint == 0 &&
		len(m.Context) == 0 && len(m.Entries) == 0
}
