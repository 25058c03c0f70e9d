// Package wire defines raftmq's client protocol: JSON requests and
// responses carried in single ZeroMQ frames. It is shared by the broker and
// the client and depends on nothing else in raftmq.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Request types and methods.
const (
	TypeTopic    = "topic"
	TypeMessage  = "message"
	TypeStatus   = "status"
	TypeSnapshot = "snapshot" // admin: take a snapshot now
	TypeMember   = "member"   // admin: list, add, promote, remove members

	MethodGet    = "GET"
	MethodPut    = "PUT"
	MethodDelete = "DELETE" // member: remove
	// Leased delivery (type message) and topic details (type topic).
	MethodReceive = "RECEIVE"
	MethodAck     = "ACK"
	MethodNack    = "NACK"
	MethodExtend  = "EXTEND"
	MethodInfo    = "INFO"
)

// Bounds of the leased-delivery fields, in milliseconds (and deliveries).
const (
	DefaultLeaseMs   = 30_000
	MinLeaseMs       = 100
	MaxLeaseMs       = 43_200_000 // 12 h
	MaxWaitMs        = 20_000
	MaxDelayMs       = MaxLeaseMs
	MaxMaxDeliveries = 1_000_000
	MaxReceiptBytes  = 128
)

// Error codes. A response carries one only when the request was not
// executed (or, for ErrTimeout, its outcome is unknown).
const (
	ErrBadRequest   = "bad_request"
	ErrNotLeader    = "not_leader"
	ErrNoLeader     = "no_leader"
	ErrTooLarge     = "too_large"
	ErrTimeout      = "timeout"
	ErrShuttingDown = "shutting_down"
	ErrInternal     = "internal"
	ErrOverloaded   = "overloaded"
	ErrStaleSeq     = "stale_seq"
	// ErrStaleReceipt: ACK, NACK or EXTEND with a receipt whose lease ended
	// or whose message was acked, dead-lettered or delivered again.
	ErrStaleReceipt = "stale_receipt"
	// ErrDiskFull: the leader's disk-space guard is tripped; puts and topic
	// creation are refused until space comes back (pops, acks and reads
	// are still served).
	ErrDiskFull = "disk_full"
	// ErrMemberRefused: the leader refused a membership change: it makes
	// no sense in the current membership (adding a member, removing a
	// stranger or the last voter, an id removed before), another change is
	// not yet committed, or the learner to promote has not caught up.
	ErrMemberRefused = "member_refused"
)

// Member roles.
const (
	RoleVoter   = "voter"
	RoleLearner = "learner"
)

// ErrorCodes lists every error code above.
func ErrorCodes() []string {
	return []string{ErrBadRequest, ErrNotLeader, ErrNoLeader, ErrTooLarge, ErrTimeout,
		ErrShuttingDown, ErrInternal, ErrOverloaded, ErrStaleSeq, ErrStaleReceipt, ErrDiskFull, ErrMemberRefused}
}

// ErrUndecodableResponse is returned by DecodeResponse for a reply frame
// that is not a JSON object of the Response shape. (The Err... constants
// above are the protocol's error codes, strings on the wire.)
var ErrUndecodableResponse = errors.New("wire: undecodable response")

// Dialect is the answer shape a request asks for, decided per request.
type Dialect uint8

const (
	// DialectRaftmq: a refused request is answered with error, detail and,
	// for not_leader, leader. Any request that uses more than the course's
	// vocabulary speaks it; the Go client always does (it sends client_id).
	DialectRaftmq Dialect = iota
	// DialectCourse: the request uses only the course's fields (type,
	// method, topic, message) and no raftmq-only type, or is not a JSON
	// object at all. Every refusal is answered exactly {"success":false}.
	DialectCourse
)

func (d Dialect) String() string {
	if d == DialectCourse {
		return "course"
	}
	return "raftmq"
}

// courseFields are the request fields of the course's protocol.
var courseFields = map[string]bool{"type": true, "method": true, "topic": true, "message": true}

// dialectScanBytes bounds how much of a frame that cannot be decoded (too
// large, not JSON) is read to find its dialect. The Go client sends
// client_id first, so its requests are recognized within it.
const dialectScanBytes = 64 << 10

// Request is a decoded, validated client request.
type Request struct {
	Type    string
	Method  string
	Topic   string
	Message string
	// ClientID and Seq make a state-changing request idempotent. HasSession
	// is true when client_id and seq were given (Seq is then >= 1). A read
	// may carry client_id alone.
	ClientID   string
	Seq        uint64
	HasSession bool
	// Leased delivery. LeaseMs 0 means the default (Lease()); WaitMs 0
	// answers at once. Receipt is ACK's, NACK's and EXTEND's; DelayMs
	// NACK's; MaxDeliveries (0: no limit) and DeadLetter topic PUT's.
	LeaseMs       uint64
	WaitMs        uint64
	DelayMs       uint64
	Receipt       string
	MaxDeliveries uint64
	DeadLetter    string
	// Member is a member request's target (type member, PUT and DELETE):
	// its id, and for PUT its role ("learner" adds it with the addresses,
	// "voter" promotes a learner).
	Member MemberSpec
	// Dialect is how to answer the request; DecodeRequest sets it even
	// when it refuses the request.
	Dialect Dialect
}

// MemberSpec names a member and, to add it, its addresses.
type MemberSpec struct {
	ID           int
	Role         string
	IP           string
	Port         int
	InternalPort int
}

// MaxMemberID bounds a member id (config.MaxNodeID).
const MaxMemberID = 1 << 20

// Member is one member in the answer to member GET. MatchIndex and Lag
// (entries behind the leader's last index) are the leader's view.
type Member struct {
	ID           int    `json:"id"`
	IP           string `json:"ip"`
	Port         int    `json:"port"`
	InternalPort int    `json:"internal_port"`
	Role         string `json:"role"`
	MatchIndex   uint64 `json:"match_index"`
	Lag          uint64 `json:"lag"`
}

// Limits bound what DecodeRequest accepts.
type Limits struct {
	MaxRequestBytes  int // whole frame
	MaxMessageBytes  int // the "message" field, in bytes
	MaxTopicBytes    int // the "topic" field, in bytes
	MaxClientIDBytes int
}

// DecodeError says why a request was refused. Code is ErrBadRequest or
// ErrTooLarge.
type DecodeError struct {
	Code   string
	Detail string
}

func (e *DecodeError) Error() string { return e.Code + ": " + e.Detail }

func badRequest(format string, args ...any) *DecodeError {
	return &DecodeError{Code: ErrBadRequest, Detail: fmt.Sprintf(format, args...)}
}

// known lists the fields a request may carry; anything else is refused so a
// typo ("mesage") is not silently ignored.
var known = map[string]bool{
	"type": true, "method": true, "topic": true, "message": true,
	"client_id": true, "seq": true,
	"lease_ms": true, "wait_ms": true, "delay_ms": true, "receipt": true,
	"max_deliveries": true, "dead_letter": true,
	"id": true, "role": true, "ip": true, "port": true, "internal_port": true,
}

// Lease is the request's lease in ms: LeaseMs, or DefaultLeaseMs when
// none was given.
func (r Request) Lease() uint64 {
	if r.LeaseMs == 0 {
		return DefaultLeaseMs
	}
	return r.LeaseMs
}

// DecodeRequest parses and validates one request frame. The returned
// Request's Dialect is set even when the frame is refused.
func DecodeRequest(frame []byte, lim Limits) (Request, *DecodeError) {
	var req Request
	fields, derr := decodeObject(frame, lim)
	if fields == nil {
		req.Dialect = scanDialect(frame)
	} else {
		req.Dialect = dialectOf(fields)
	}
	if derr != nil {
		return req, derr
	}
	derr = req.validate(fields, lim)
	return req, derr
}

// dialectOf decides the dialect of a request that is a JSON object.
func dialectOf(fields map[string]json.RawMessage) Dialect {
	for k := range fields {
		if !courseFields[k] {
			return DialectRaftmq
		}
	}
	if raftmqType(fields["type"]) || raftmqMethod(fields["method"]) {
		return DialectRaftmq
	}
	return DialectCourse
}

// raftmqType reports whether a request's raw type is one raftmq added.
func raftmqType(raw json.RawMessage) bool {
	t, err := jsonString(raw)
	return raw != nil && err == nil && (t == TypeSnapshot || t == TypeMember)
}

// raftmqMethod reports whether a request's raw method is one raftmq added.
func raftmqMethod(raw json.RawMessage) bool {
	m, err := jsonString(raw)
	if raw == nil || err != nil {
		return false
	}
	switch m {
	case MethodReceive, MethodAck, MethodNack, MethodExtend, MethodInfo:
		return true
	}
	return false
}

// scanDialect decides the dialect of a frame that did not decode into a
// JSON object (too large, broken, not an object) from the fields it names
// in its first dialectScanBytes: one beyond the course's makes it raftmq,
// even if the object breaks off later.
func scanDialect(frame []byte) Dialect {
	dec := json.NewDecoder(io.LimitReader(bytes.NewReader(frame), dialectScanBytes))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return DialectCourse
	}
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return DialectCourse
		}
		if !courseFields[key] {
			return DialectRaftmq
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return DialectCourse
		}
		if key == "type" && raftmqType(v) || key == "method" && raftmqMethod(v) {
			return DialectRaftmq
		}
	}
	return DialectCourse
}

// decodeObject checks the frame's size and encoding and decodes it as one
// JSON object. fields is nil when the frame is not one.
func decodeObject(frame []byte, lim Limits) (map[string]json.RawMessage, *DecodeError) {
	if len(frame) == 0 {
		return nil, badRequest("empty frame: send one JSON object such as {\"type\":\"topic\",\"method\":\"GET\"}")
	}
	if lim.MaxRequestBytes > 0 && len(frame) > lim.MaxRequestBytes {
		return nil, &DecodeError{Code: ErrTooLarge, Detail: fmt.Sprintf("request is %d bytes; the limit is %d", len(frame), lim.MaxRequestBytes)}
	}
	if !utf8.Valid(frame) {
		return nil, badRequest("request is not valid UTF-8 JSON")
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(frame))
	if err := dec.Decode(&fields); err != nil || fields == nil {
		if err == nil {
			return nil, badRequest("request must be a JSON object, not null")
		}
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			return nil, badRequest("request must be a JSON object")
		}
		return nil, badRequest("request is not valid JSON: %v", err)
	}
	if dec.More() {
		return fields, badRequest("request has data after the JSON object; send one object per frame")
	}
	return fields, nil
}

// validate fills req from the fields of a decoded object.
func (req *Request) validate(fields map[string]json.RawMessage, lim Limits) *DecodeError {
	for k := range fields {
		if !known[k] {
			return badRequest("unknown field %q (known: type, method, topic, message, client_id, seq, lease_ms, wait_ms, delay_ms, receipt, max_deliveries, dead_letter, id, role, ip, port, internal_port)", k)
		}
	}
	var err *DecodeError
	if req.Type, err = stringField(fields, "type", true); err != nil {
		return err
	}
	if req.Method, err = stringField(fields, "method", true); err != nil {
		return err
	}
	switch req.Method {
	case MethodGet, MethodPut:
	case MethodDelete:
		if req.Type != TypeMember {
			return badRequest("DELETE is a member method")
		}
	case MethodReceive, MethodAck, MethodNack, MethodExtend:
		if req.Type != TypeMessage {
			return badRequest("%s is a message method", req.Method)
		}
	case MethodInfo:
		if req.Type != TypeTopic {
			return badRequest("INFO is a topic method")
		}
	default:
		return badRequest("method %q is not GET, PUT, DELETE, RECEIVE, ACK, NACK, EXTEND or INFO", req.Method)
	}
	needTopic, needMessage := false, false
	switch req.Type {
	case TypeTopic:
		needTopic = req.Method == MethodPut || req.Method == MethodInfo
	case TypeMessage:
		needTopic = true
		needMessage = req.Method == MethodPut
	case TypeStatus:
		if req.Method != MethodGet {
			return badRequest("status supports GET only")
		}
	case TypeSnapshot:
		if req.Method != MethodPut {
			return badRequest("snapshot supports PUT only")
		}
	case TypeMember:
		if err := req.validateMember(fields); err != nil {
			return err
		}
	default:
		return badRequest("type %q is not topic, message, status, snapshot or member", req.Type)
	}
	if req.Type != TypeMember {
		for _, f := range []string{"id", "role", "ip", "port", "internal_port"} {
			if _, ok := fields[f]; ok {
				return badRequest("%s %s takes no %s", req.Type, req.Method, f)
			}
		}
	}
	if needTopic {
		if req.Topic, err = stringField(fields, "topic", true); err != nil {
			return err
		}
		if req.Topic == "" {
			return badRequest("topic must not be empty")
		}
		if lim.MaxTopicBytes > 0 && len(req.Topic) > lim.MaxTopicBytes {
			return &DecodeError{Code: ErrTooLarge, Detail: fmt.Sprintf("topic name is %d bytes; the limit is %d", len(req.Topic), lim.MaxTopicBytes)}
		}
	} else if _, ok := fields["topic"]; ok {
		return badRequest("%s %s takes no topic", req.Type, req.Method)
	}
	if needMessage {
		if req.Message, err = stringField(fields, "message", true); err != nil {
			return err
		}
		if lim.MaxMessageBytes > 0 && len(req.Message) > lim.MaxMessageBytes {
			return &DecodeError{Code: ErrTooLarge, Detail: fmt.Sprintf("message is %d bytes; the limit is %d", len(req.Message), lim.MaxMessageBytes)}
		}
	} else if _, ok := fields["message"]; ok {
		return badRequest("%s %s takes no message", req.Type, req.Method)
	}
	if err := req.validateLeaseFields(fields, lim); err != nil {
		return err
	}
	if raw, ok := fields["client_id"]; ok {
		if req.ClientID, err = stringField(fields, "client_id", true); err != nil {
			return err
		}
		if req.ClientID == "" {
			return badRequest("client_id must not be empty")
		}
		if lim.MaxClientIDBytes > 0 && len(req.ClientID) > lim.MaxClientIDBytes {
			return badRequest("client_id is %d bytes; the limit is %d", len(raw), lim.MaxClientIDBytes)
		}
		rawSeq, ok := fields["seq"]
		if !ok {
			if !req.Mutates() {
				return nil // a read names its client, which has no session to check
			}
			return badRequest("client_id needs seq (a positive integer, one higher per request)")
		}
		if req.Seq, err = seqField(rawSeq); err != nil || req.Seq == 0 {
			return badRequest("seq must be a positive integer")
		}
		req.HasSession = true
	} else if _, ok := fields["seq"]; ok {
		return badRequest("seq needs client_id")
	}
	return nil
}

// validateMember checks a member request: GET takes nothing, DELETE an
// id, PUT an id and a role, and for role learner the addresses.
func (req *Request) validateMember(fields map[string]json.RawMessage) *DecodeError {
	allowed := map[string]bool{}
	switch req.Method {
	case MethodGet:
	case MethodDelete:
		allowed["id"] = true
	case MethodPut:
		allowed["id"], allowed["role"] = true, true
		var role string
		if raw, ok := fields["role"]; ok && json.Unmarshal(raw, &role) == nil && role == RoleLearner {
			allowed["ip"], allowed["port"], allowed["internal_port"] = true, true, true
		}
	}
	for _, f := range []string{"id", "role", "ip", "port", "internal_port"} {
		_, ok := fields[f]
		switch {
		case ok && !allowed[f]:
			return badRequest("member %s takes no %s", req.Method, f)
		case !ok && allowed[f]:
			return badRequest("member %s needs %s", req.Method, f)
		}
	}
	var err *DecodeError
	var v uint64
	if raw, ok := fields["id"]; ok {
		if v, err = uintField(raw, "id", 0, MaxMemberID); err != nil {
			return err
		}
		req.Member.ID = int(v)
	}
	if _, ok := fields["role"]; ok {
		if req.Member.Role, err = stringField(fields, "role", true); err != nil {
			return err
		}
		if req.Member.Role != RoleLearner && req.Member.Role != RoleVoter {
			return badRequest("role must be %q (add) or %q (promote a learner)", RoleLearner, RoleVoter)
		}
	}
	if req.Member.Role == RoleLearner {
		if req.Member.IP, err = stringField(fields, "ip", true); err != nil {
			return err
		}
		if req.Member.IP == "" || len(req.Member.IP) > 64 {
			return badRequest("ip must be an IP address")
		}
		for _, p := range []struct {
			name string
			dst  *int
		}{{"port", &req.Member.Port}, {"internal_port", &req.Member.InternalPort}} {
			if v, err = uintField(fields[p.name], p.name, 1, 65535); err != nil {
				return err
			}
			*p.dst = int(v)
		}
	}
	return nil
}

// leaseFields says which leased-delivery fields each request may carry.
func (req *Request) leaseFields() (lease, wait, delay, receipt, deadLetter bool) {
	switch {
	case req.Type == TypeMessage && req.Method == MethodReceive:
		return true, true, false, false, false
	case req.Type == TypeMessage && req.Method == MethodGet:
		return false, true, false, false, false
	case req.Type == TypeMessage && req.Method == MethodAck:
		return false, false, false, true, false
	case req.Type == TypeMessage && req.Method == MethodNack:
		return false, false, true, true, false
	case req.Type == TypeMessage && req.Method == MethodExtend:
		return true, false, false, true, false
	case req.Type == TypeTopic && req.Method == MethodPut:
		return false, false, false, false, true
	}
	return false, false, false, false, false
}

// validateLeaseFields checks the leased-delivery fields: each only where
// it means something, integers in range, receipt and dead letter strings.
func (req *Request) validateLeaseFields(fields map[string]json.RawMessage, lim Limits) *DecodeError {
	lease, wait, delay, receipt, deadLetter := req.leaseFields()
	var err *DecodeError
	ints := []struct {
		name     string
		allowed  bool
		min, max uint64
		dst      *uint64
	}{
		{"lease_ms", lease, MinLeaseMs, MaxLeaseMs, &req.LeaseMs},
		{"wait_ms", wait, 0, MaxWaitMs, &req.WaitMs},
		{"delay_ms", delay, 0, MaxDelayMs, &req.DelayMs},
		{"max_deliveries", deadLetter, 1, MaxMaxDeliveries, &req.MaxDeliveries},
	}
	for _, f := range ints {
		raw, ok := fields[f.name]
		if !ok {
			continue
		}
		if !f.allowed {
			return badRequest("%s %s takes no %s", req.Type, req.Method, f.name)
		}
		if *f.dst, err = uintField(raw, f.name, f.min, f.max); err != nil {
			return err
		}
	}
	if receipt {
		if req.Receipt, err = stringField(fields, "receipt", true); err != nil {
			return err
		}
		if req.Receipt == "" || len(req.Receipt) > MaxReceiptBytes {
			return badRequest("receipt must be the non-empty string a RECEIVE answered (at most %d bytes)", MaxReceiptBytes)
		}
	} else if _, ok := fields["receipt"]; ok {
		return badRequest("%s %s takes no receipt", req.Type, req.Method)
	}
	if !deadLetter {
		if _, ok := fields["dead_letter"]; ok {
			return badRequest("%s %s takes no dead_letter", req.Type, req.Method)
		}
		return nil
	}
	if req.DeadLetter, err = stringField(fields, "dead_letter", false); err != nil {
		return err
	}
	_, hasDL := fields["dead_letter"]
	switch {
	case req.MaxDeliveries > 0 && req.DeadLetter == "":
		return badRequest("max_deliveries needs dead_letter, the topic that receives messages after their last delivery (nothing is dropped silently)")
	case hasDL && req.MaxDeliveries == 0:
		return badRequest("dead_letter needs max_deliveries (a positive integer)")
	case req.DeadLetter == req.Topic && hasDL:
		return badRequest("a topic cannot be its own dead_letter topic")
	case lim.MaxTopicBytes > 0 && len(req.DeadLetter) > lim.MaxTopicBytes:
		return &DecodeError{Code: ErrTooLarge, Detail: fmt.Sprintf("dead_letter topic name is %d bytes; the limit is %d", len(req.DeadLetter), lim.MaxTopicBytes)}
	}
	return nil
}

// uintField decodes a JSON integer within [min, max].
func uintField(raw json.RawMessage, name string, min, max uint64) (uint64, *DecodeError) {
	// Digits only: no string, sign, fraction or exponent.
	text := string(bytes.TrimSpace(raw))
	v, err := strconv.ParseUint(text, 10, 64)
	if err != nil || v < min || v > max {
		return 0, badRequest("%s must be an integer from %d to %d, not %.40s", name, min, max, text)
	}
	return v, nil
}

func stringField(fields map[string]json.RawMessage, name string, required bool) (string, *DecodeError) {
	raw, ok := fields[name]
	if !ok {
		if required {
			return "", badRequest("missing field %q", name)
		}
		return "", nil
	}
	s, err := jsonString(raw)
	if err != nil {
		return "", badRequest("field %q must be a string", name)
	}
	return s, nil
}

// jsonString decodes raw, one value of a decoded object, as a string.
func jsonString(raw json.RawMessage) (string, error) {
	if s, ok := plainString(raw); ok {
		return s, nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// plainString is the common case of stringField without a second JSON
// pass: raw is one value of an object the decoder accepted from valid
// UTF-8, so a quoted value without a backslash is a string whose bytes are
// exactly what lies between the quotes (a quote inside would need an
// escape, and control characters were refused). Anything else (escapes,
// not a string) goes through json.Unmarshal.
func plainString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') >= 0 {
		return "", false
	}
	return string(body), true
}

// Mutates reports whether the request changes state (goes through the log).
func (r Request) Mutates() bool {
	switch r.Type {
	case TypeTopic:
		return r.Method == MethodPut
	case TypeMessage:
		return true // GET message pops; RECEIVE leases
	}
	return false
}

// TopicInfo is a topic's details, the answer to topic INFO.
type TopicInfo struct {
	Name          string `json:"name"`
	Ready         uint64 `json:"ready"`
	Leased        uint64 `json:"leased"`
	Delayed       uint64 `json:"delayed"`
	MaxDeliveries uint64 `json:"max_deliveries"`
	DeadLetter    string `json:"dead_letter,omitempty"`
}

// Response is a reply frame. Fields are pointers or omitempty so each
// documented outcome has exactly its documented keys.
type Response struct {
	Success bool      `json:"success"`
	Topics  *[]string `json:"topics,omitempty"`
	Message *string   `json:"message,omitempty"`
	// Receipt and Deliveries answer a RECEIVE; Info a topic INFO.
	Receipt    *string    `json:"receipt,omitempty"`
	Deliveries *uint64    `json:"deliveries,omitempty"`
	Info       *TopicInfo `json:"info,omitempty"`
	Error      string     `json:"error,omitempty"`
	Detail     string     `json:"detail,omitempty"`
	Leader     string     `json:"leader,omitempty"`
	// Index is the snapshot index an admin snapshot request answers with.
	Index *uint64 `json:"index,omitempty"`
	// Members answers member GET.
	Members *[]Member `json:"members,omitempty"`
}

// OK is {"success": true}.
func OK() Response { return Response{Success: true} }

// Fail is {"success": false}: the request ran and its answer is no.
func Fail() Response { return Response{} }

// ErrorResponse is a request that was not executed.
func ErrorResponse(code, detail string) Response {
	return Response{Error: code, Detail: detail}
}

// Refused reports whether r refuses the request (it carries an error code).
func (r Response) Refused() bool { return r.Error != "" }

// In returns r as a client of dialect d must see it: a course client gets
// exactly {"success": false} for a refused request, whatever the reason.
func (r Response) In(d Dialect) Response {
	if d == DialectCourse && r.Refused() {
		return Fail()
	}
	return r
}

// Status is the reply to GET status. Role and Term are the course fields.
type Status struct {
	Role       string `json:"role"`
	Term       uint64 `json:"term"`
	ID         int    `json:"id"`
	LeaderID   *int   `json:"leader_id,omitempty"`
	Leader     string `json:"leader,omitempty"`
	Commit     uint64 `json:"commit_index"`
	Applied    uint64 `json:"applied_index"`
	LastIndex  uint64 `json:"last_log_index"`
	FirstIndex uint64 `json:"first_log_index"`
	Snapshot   uint64 `json:"snapshot_index"`
	Address    string `json:"address"`
	// LogSyncs counts fsyncs of raft.db and LogEntries the entries persisted
	// since the broker started; bench divides their deltas to get entries
	// per fsync.
	LogSyncs   uint64 `json:"log_syncs"`
	LogEntries uint64 `json:"log_entries"`
	// Refused counts the course-dialect requests answered {"success":false}
	// because they were refused (bad input, not_leader, ...) rather than
	// executed; their reasons are in the debug log.
	Refused uint64 `json:"refused"`
	// StateCommits counts state.db's group commits and DurableApplied is
	// the applied index state.db holds on disk (decision 4).
	StateCommits   uint64 `json:"state_commits"`
	DurableApplied uint64 `json:"durable_applied_index"`
	// CPUMicros is the CPU time (user + system) the broker process has used
	// since it started, in µs; bench divides its deltas by the puts.
	CPUMicros uint64 `json:"cpu_us"`
	// Waiting counts the long-polling GETs and RECEIVEs parked on this
	// node, waiting for a message.
	Waiting int `json:"waiting"`
	// Recovering: the node lost or damaged its data and is catching up from
	// the leader; it neither votes nor leads until then.
	Recovering bool `json:"recovering,omitempty"`
	// SnapshotInProgress: this node is writing a snapshot (or its compact
	// copy of state.db) right now.
	SnapshotInProgress bool `json:"snapshot_in_progress,omitempty"`
	// SnapshotBytes is what the snapshot in progress has written so far;
	// SnapshotSends counts snapshot transfers to followers under way.
	SnapshotBytes int64 `json:"snapshot_bytes,omitempty"`
	SnapshotSends int   `json:"snapshot_sends,omitempty"`
	// HeapBytes is the Go heap in use (live and not yet swept objects);
	// AnonBytes the process's anonymous resident memory (RssAnon of
	// /proc/self/status: heap, stacks, runtime; 0 where unknown), beside
	// which bbolt's memory-mapped files are page cache, not counted.
	HeapBytes uint64 `json:"heap_bytes"`
	AnonBytes uint64 `json:"anon_rss_bytes,omitempty"`
	// PeerFramesRefused counts peer frames dropped as invalid (foreign,
	// malformed, breaking a rule, from a stranger); PeerConnsRefused and
	// ClientConnsRefused count connections cut over the limits.
	PeerFramesRefused  uint64 `json:"peer_frames_refused,omitempty"`
	PeerConnsRefused   uint64 `json:"peer_connections_refused,omitempty"`
	ClientConnsRefused uint64 `json:"client_connections_refused,omitempty"`
	// CurveConnsRefused counts connections refused by CURVE on either port:
	// plaintext, a key not allowed, a handshake that did not decrypt.
	CurveConnsRefused uint64 `json:"curve_connections_refused,omitempty"`
	// Ready is what /readyz answers: the node knows a leader holding a
	// quorum, has applied what it knows committed and is not recovering.
	// NotReady says why not.
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`
	// LeaderChanges counts the leader changes this node saw since it
	// started (a leader lost counts too).
	LeaderChanges uint64 `json:"leader_changes"`
	// PeerLag, on the leader: each follower's cluster-file index (as a
	// string) and how many entries it is behind the leader's last index.
	PeerLag map[string]uint64 `json:"peer_lag,omitempty"`
	// Disk: free and total bytes of the data directory's filesystem, the
	// data directory's own size, and the guard: DiskFull is set while free
	// space is below MinFreeBytes or the data directory above MaxDataBytes
	// (0: unlimited); DiskFullReason says which.
	DiskFreeBytes  uint64 `json:"disk_free_bytes"`
	DiskTotalBytes uint64 `json:"disk_total_bytes"`
	DataBytes      uint64 `json:"data_bytes"`
	MinFreeBytes   uint64 `json:"min_free_bytes"`
	MaxDataBytes   uint64 `json:"max_data_bytes,omitempty"`
	DiskFull       bool   `json:"disk_full,omitempty"`
	DiskFullReason string `json:"disk_full_reason,omitempty"`
	// AppendsDropped counts the appends from the leader this node did not
	// take because its disk guard was tripped (it catches up later).
	AppendsDropped uint64 `json:"appends_dropped,omitempty"`
}

// requestJSON is a request on the wire, fields in the order sent: client_id
// first, so that even a frame too large to decode shows its dialect within
// dialectScanBytes.
type requestJSON struct {
	ClientID string  `json:"client_id,omitempty"`
	Seq      uint64  `json:"seq,omitempty"`
	Type     string  `json:"type"`
	Method   string  `json:"method"`
	Topic    string  `json:"topic,omitempty"`
	Message  *string `json:"message,omitempty"`
	Receipt  string  `json:"receipt,omitempty"`
	LeaseMs  uint64  `json:"lease_ms,omitempty"`
	WaitMs   uint64  `json:"wait_ms,omitempty"`
	DelayMs  uint64  `json:"delay_ms,omitempty"`
	MaxDeliv uint64  `json:"max_deliveries,omitempty"`
	DeadLet  string  `json:"dead_letter,omitempty"`
	ID       *int    `json:"id,omitempty"`
	Role     string  `json:"role,omitempty"`
	IP       string  `json:"ip,omitempty"`
	Port     int     `json:"port,omitempty"`
	Internal int     `json:"internal_port,omitempty"`
}

// EncodeRequest is the one encoder of client requests, DecodeRequest's
// inverse: client_id when set, seq when HasSession, the message of a
// message PUT (even empty) and no other.
func EncodeRequest(r Request) []byte {
	j := requestJSON{ClientID: r.ClientID, Type: r.Type, Method: r.Method, Topic: r.Topic,
		Receipt: r.Receipt, LeaseMs: r.LeaseMs, WaitMs: r.WaitMs, DelayMs: r.DelayMs, MaxDeliv: r.MaxDeliveries, DeadLet: r.DeadLetter}
	if r.HasSession {
		j.Seq = r.Seq
	}
	if r.Type == TypeMessage && r.Method == MethodPut {
		j.Message = &r.Message
	}
	if r.Type == TypeMember && r.Method != MethodGet {
		id := r.Member.ID
		j.ID, j.Role = &id, r.Member.Role
		if r.Member.Role == RoleLearner {
			j.IP, j.Port, j.Internal = r.Member.IP, r.Member.Port, r.Member.InternalPort
		}
	}
	b, err := json.Marshal(j)
	if err != nil {
		panic(fmt.Sprintf("wire: marshal %+v: %v", j, err)) // strings and numbers always marshal
	}
	return b
}

// DecodeResponse decodes a reply frame (any of Response's shapes).
func DecodeResponse(frame []byte) (Response, error) {
	var r Response
	if err := json.Unmarshal(frame, &r); err != nil {
		return Response{}, fmt.Errorf("%w: %q: %w", ErrUndecodableResponse, truncate(frame, 200), err)
	}
	return r, nil
}

// Same reports whether r and o give the same answer: success, message,
// topics and index (refusals carry no answer and are never the same).
func (r Response) Same(o Response) bool {
	if r.Refused() || o.Refused() || r.Success != o.Success {
		return false
	}
	return eqPtr(r.Message, o.Message) && eqPtr(r.Index, o.Index) && eqPtr(r.Receipt, o.Receipt) &&
		eqPtr(r.Deliveries, o.Deliveries) && eqPtr(r.Info, o.Info) && r.Members == nil && o.Members == nil &&
		(r.Topics == nil) == (o.Topics == nil) && (r.Topics == nil || slices.Equal(*r.Topics, *o.Topics))
}

func eqPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// seqField decodes a session's seq: what json.Unmarshal into a uint64
// accepts, with the common all-digits case parsed directly (JSON has no
// leading zeros, and the decoder refused malformed numbers).
func seqField(raw json.RawMessage) (uint64, *DecodeError) {
	digits := len(raw) > 0
	for _, c := range raw {
		if c < '0' || c > '9' {
			digits = false
			break
		}
	}
	var v uint64
	var err error
	if digits {
		v, err = strconv.ParseUint(string(raw), 10, 64)
	} else {
		err = json.Unmarshal(raw, &v)
	}
	if err != nil {
		return 0, badRequest("seq must be a positive integer")
	}
	return v, nil
}
