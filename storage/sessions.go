package storage

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// session is a client's entry in the session table. Sessions are keyed by
// client id in bucketSessions and indexed by (lastUse, client id) in
// bucketSessionLRU, so the least recently used one is the LRU bucket's
// first key: eviction depends only on the log.
type session struct {
	lastSeq uint64
	lastUse uint64 // log index of the last command that used the session
	result  Result // the result of lastSeq
}

const (
	resultSuccess    = 1 << 0
	resultHasMessage = 1 << 1
	resultStaleSeq   = 1 << 2
)

func encodeSession(s session) []byte {
	b := putU64(putU64(nil, s.lastSeq), s.lastUse)
	var flags byte
	if s.result.Success {
		flags |= resultSuccess
	}
	if s.result.HasMessage {
		flags |= resultHasMessage
	}
	if s.result.StaleSeq {
		flags |= resultStaleSeq
	}
	b = appendString(append(b, flags), s.result.Message)
	// Since state.db version 2: the refusal, a receive's receipt and count.
	b = appendString(append(b, byte(s.result.Refusal)), s.result.Receipt)
	return putU64(b, s.result.Deliveries)
}

func decodeSession(b []byte) (session, error) {
	r := reader{b: b}
	s := session{lastSeq: r.u64("last seq"), lastUse: r.u64("last use")}
	flags := r.byte1("result flags")
	s.result = Result{
		Success:    flags&resultSuccess != 0,
		HasMessage: flags&resultHasMessage != 0,
		StaleSeq:   flags&resultStaleSeq != 0,
		Message:    string(r.bytesN(r.uvarint("message length"), "message")),
	}
	if r.err == nil && len(r.b) > 0 { // written by state.db version 2
		s.result.Refusal = Refusal(r.byte1("refusal"))
		s.result.Receipt = string(r.bytesN(r.uvarint("receipt length"), "receipt"))
		s.result.Deliveries = r.u64("deliveries")
	}
	return s, r.done("session")
}

func lruKey(lastUse uint64, clientID string) []byte {
	return append(indexKey(lastUse), clientID...)
}

func (a *applier) getSession(clientID string) (session, bool, error) {
	v, ok, err := getSealedKey(a.tx.Bucket(bucketSessions), []byte(clientID))
	if err != nil {
		return session{}, false, corruptError(a.path, fmt.Sprintf("session %q: %v", clientID, err))
	}
	if !ok {
		return session{}, false, nil
	}
	s, err := decodeSession(v)
	if err != nil {
		return session{}, false, corruptError(a.path, fmt.Sprintf("session %q: %v", clientID, err))
	}
	return s, true, nil
}

// putSession replaces old with next for clientID.
func (a *applier) putSession(clientID string, old, next session) error {
	if err := a.tx.Bucket(bucketSessionLRU).Delete(lruKey(old.lastUse, clientID)); err != nil {
		return err
	}
	return a.writeSession(clientID, next)
}

func (a *applier) putNewSession(clientID string, s session) error {
	n, err := getCounter(a.tx, a.path, keySessionsN)
	if err != nil {
		return err
	}
	if err := putCounter(a.tx, keySessionsN, n+1); err != nil {
		return err
	}
	return a.writeSession(clientID, s)
}

func (a *applier) writeSession(clientID string, s session) error {
	if err := putSealedKey(a.tx.Bucket(bucketSessions), []byte(clientID), encodeSession(s)); err != nil {
		return err
	}
	return a.tx.Bucket(bucketSessionLRU).Put(lruKey(s.lastUse, clientID), []byte{})
}

// makeRoomForSession evicts least recently used sessions until one more
// fits in maxSessions.
func (a *applier) makeRoomForSession() error {
	n, err := getCounter(a.tx, a.path, keySessionsN)
	if err != nil {
		return err
	}
	lru := a.tx.Bucket(bucketSessionLRU)
	for ; n >= a.maxSessions; n-- {
		k, _ := lru.Cursor().First()
		if k == nil || len(k) < 8 {
			return corruptError(a.path, fmt.Sprintf("session count is %d but the LRU index is empty or damaged", n))
		}
		clientID := append([]byte(nil), k[8:]...)
		if err := lru.Delete(append([]byte(nil), k...)); err != nil {
			return err
		}
		if err := a.tx.Bucket(bucketSessions).Delete(clientID); err != nil {
			return err
		}
	}
	return putCounter(a.tx, keySessionsN, n)
}

// sessionCount returns the number of sessions (for Inspect).
func sessionCount(tx *bbolt.Tx, path string) (uint64, error) {
	return getCounter(tx, path, keySessionsN)
}
