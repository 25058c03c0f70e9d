package storage

import (
	"fmt"
	"strconv"
	"strings"
)

// Receipt names one delivery of one message: the topic's creation
// sequence, the message's sequence and the log index of the RECEIVE that
// made the delivery. Log indexes are unique, so a receipt is never issued
// twice; clients treat it as an opaque string.
type Receipt struct {
	Topic    uint64
	Message  uint64
	Delivery uint64
}

// String formats r as three lowercase hex numbers joined by '-'.
func (r Receipt) String() string {
	return strconv.FormatUint(r.Topic, 16) + "-" + strconv.FormatUint(r.Message, 16) + "-" + strconv.FormatUint(r.Delivery, 16)
}

// ParseReceipt parses what Receipt.String produced; anything else (and
// any other spelling of the same numbers) wraps ErrBadReceipt.
func ParseReceipt(s string) (Receipt, error) {
	parts := strings.Split(s, "-")
	if len(s) > maxCommandReceiptBytes || len(parts) != 3 {
		return Receipt{}, fmt.Errorf("%w: %.40q is not three hex numbers joined by '-'", ErrBadReceipt, s)
	}
	var v [3]uint64
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 16, 64)
		if err != nil || strconv.FormatUint(n, 16) != p {
			return Receipt{}, fmt.Errorf("%w: %.40q is not three hex numbers joined by '-'", ErrBadReceipt, s)
		}
		v[i] = n
	}
	if v[2] == 0 {
		return Receipt{}, fmt.Errorf("%w: %.40q names delivery 0", ErrBadReceipt, s)
	}
	return Receipt{Topic: v[0], Message: v[1], Delivery: v[2]}, nil
}
