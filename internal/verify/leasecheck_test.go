package verify

import (
	"testing"
	"time"
)

// lrow is one leased-delivery op of a hand-written history: kind, value,
// receipt, deliveries, lease ms, call ms, return ms, status.
type lrow struct {
	kind    LeaseKind
	value   string
	receipt string
	n       uint64
	lease   uint64
	call    int
	ret     int
	st      OpStatus
}

func lbuild(rows ...lrow) []LeaseOp {
	var ops []LeaseOp
	for i, r := range rows {
		ops = append(ops, LeaseOp{ID: i, Kind: r.kind, Topic: "lease00", Value: r.value, Receipt: r.receipt, Deliveries: r.n, LeaseMs: r.lease,
			Call: time.Duration(r.call) * time.Millisecond, Return: time.Duration(r.ret) * time.Millisecond, Status: r.st,
			Stale: r.st == StatusFail && (r.kind == LeaseAck || r.kind == LeaseNack || r.kind == LeaseExtend)})
	}
	return ops
}

func TestCheckLeases(t *testing.T) {
	put := func(v string) lrow { return lrow{LeasePut, v, "", 0, 0, 0, 1, StatusOK} }
	stale := func(r lrow) lrow { r.st = StatusFail; return r }
	tests := []struct {
		name  string
		ops   []LeaseOp
		check func(LeaseResult) bool
	}{
		{"clean: acked, redelivered then acked, dead-lettered, stale refused", lbuild(
			put("a"), put("b"), put("c"),
			lrow{LeaseReceive, "a", "r1", 1, 100, 2, 3, StatusOK},
			lrow{LeaseAck, "", "r1", 0, 0, 10, 11, StatusOK},
			lrow{LeaseReceive, "b", "r2", 1, 100, 12, 13, StatusOK},
			lrow{LeaseReceive, "b", "r3", 2, 100, 200, 201, StatusOK}, // r2's lease ended
			stale(lrow{LeaseAck, "", "r2", 0, 0, 202, 203, 0}),
			lrow{LeaseExtend, "", "r3", 0, 500, 250, 251, StatusOK},
			lrow{LeaseAck, "", "r3", 0, 0, 600, 601, StatusOK}, // within the extended lease
			lrow{LeaseDeadPop, "c", "", 0, 0, 700, 701, StatusOK},
		), func(r LeaseResult) bool {
			return r.OK() && r.Acked == 2 && r.DeadLettered == 1 && r.StaleRefused == 1 && r.Puts == 3
		}},
		{"ack accepted after a redelivery", lbuild(
			put("a"),
			lrow{LeaseReceive, "a", "r1", 1, 100, 2, 3, StatusOK},
			lrow{LeaseReceive, "a", "r2", 2, 100, 200, 201, StatusOK},
			lrow{LeaseAck, "", "r1", 0, 0, 202, 203, StatusOK},
		), func(r LeaseResult) bool { return r.StaleAccepted == 1 && !r.OK() }},
		{"ack accepted after the lease ended", lbuild(
			put("a"),
			lrow{LeaseReceive, "a", "r1", 1, 100, 2, 3, StatusOK},
			lrow{LeaseAck, "", "r1", 0, 0, 150, 151, StatusOK},
		), func(r LeaseResult) bool { return r.StaleAccepted == 1 }},
		{"ack just inside the lease bound is not provably stale", lbuild(
			put("a"),
			lrow{LeaseReceive, "a", "r1", 1, 100, 2, 3, StatusOK},
			lrow{LeaseAck, "", "r1", 0, 0, 104, 151, StatusOK},
		), func(r LeaseResult) bool { return r.OK() }},
		{"lost", lbuild(put("a"), lrow{LeaseReceive, "a", "r1", 1, 100, 2, 3, StatusOK}),
			func(r LeaseResult) bool { return r.Lost == 1 }},
		{"lost but an ack of unknown outcome may have taken it", lbuild(put("a"),
			lrow{LeaseReceive, "a", "r1", 1, 100, 2, 3, StatusOK},
			lrow{LeaseAck, "", "r1", 0, 0, 4, 0, StatusUnknown}),
			func(r LeaseResult) bool { return r.OK() }},
		{"acked and dead-lettered", lbuild(put("a"),
			lrow{LeaseReceive, "a", "r1", 1, 100, 2, 3, StatusOK},
			lrow{LeaseAck, "", "r1", 0, 0, 4, 5, StatusOK},
			lrow{LeaseDeadPop, "a", "", 0, 0, 6, 7, StatusOK}),
			func(r LeaseResult) bool { return r.Duplicated == 1 }},
		{"a delivery count repeated after failover", lbuild(put("a"),
			lrow{LeaseReceive, "a", "r1", 1, 100, 2, 3, StatusOK},
			lrow{LeaseReceive, "a", "r2", 1, 100, 200, 201, StatusOK},
			lrow{LeaseAck, "", "r2", 0, 0, 202, 203, StatusOK}),
			func(r LeaseResult) bool { return r.BadCounts == 1 }},
		{"a delivery beyond the limit", lbuild(put("a"),
			lrow{LeaseReceive, "a", "r1", 4, 100, 2, 3, StatusOK},
			lrow{LeaseAck, "", "r1", 0, 0, 4, 5, StatusOK}),
			func(r LeaseResult) bool { return r.BadCounts == 1 }},
		{"never sent", lbuild(lrow{LeaseDeadPop, "x", "", 0, 0, 6, 7, StatusOK}),
			func(r LeaseResult) bool { return r.NeverSent == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkLeases(tt.ops, 3); !tt.check(got) {
				t.Fatalf("checkLeases = %+v", got)
			}
		})
	}
}
