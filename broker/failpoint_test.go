package broker

import (
	"errors"
	"strings"
	"testing"
)

// TestParseFailpoints: the env value arms exactly the points it names, and
// a typo is refused with a message that lists the known points.
func TestParseFailpoints(t *testing.T) {
	tests := []struct {
		spec    string
		want    map[failpoint]uint64
		wantErr string // substring of the error; "" for success
	}{
		{spec: "", want: nil},
		{spec: "  ", want: nil},
		{spec: "log-after-persist=3", want: map[failpoint]uint64{fpLogAfterPersist: 3}},
		{spec: "log-before-persist=1, before-reply=10", want: map[failpoint]uint64{fpLogBeforePersist: 1, fpBeforeReply: 10}},
		{spec: "install-between-swaps=1,snapshot-before-record=2", want: map[failpoint]uint64{fpInstallBetweenSwaps: 1, fpSnapshotBeforeRecord: 2}},
		{spec: "log-after-persits=3", wantErr: "unknown failpoint \"log-after-persits\"; known: log-before-persist, log-after-persist"},
		{spec: "log-after-persist", wantErr: "is not name=hit"},
		{spec: "log-after-persist=0", wantErr: "the hit must be an integer in [1,"},
		{spec: "log-after-persist=-1", wantErr: "the hit must be an integer"},
		{spec: "log-after-persist=x", wantErr: "the hit must be an integer"},
		{spec: "log-after-persist=2147483648", wantErr: "the hit must be an integer"},
		{spec: "before-reply=1,before-reply=2", wantErr: "before-reply is named twice"},
		{spec: "before-reply=1,", wantErr: "\"\" is not name=hit"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			at, err := parseFailpoints(tc.spec)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadFailpoints) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseFailpoints(%q) = %v, want ErrBadFailpoints containing %q", tc.spec, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFailpoints(%q): %v", tc.spec, err)
			}
			for p := failpoint(0); p < numFailpoints; p++ {
				if at[p] != tc.want[p] {
					t.Errorf("%s armed at %d, want %d", p, at[p], tc.want[p])
				}
			}
		})
	}
}

// TestFailpointNamesTable: every point has a distinct, non-empty name that
// round-trips through the lookup.
func TestFailpointNamesTable(t *testing.T) {
	names := FailpointNames()
	if len(names) != int(numFailpoints) {
		t.Fatalf("%d names for %d points", len(names), numFailpoints)
	}
	seen := map[string]bool{}
	for i, name := range names {
		if name == "" || seen[name] || strings.ContainsAny(name, "=, ") {
			t.Errorf("point %d has a bad or repeated name %q", i, name)
		}
		seen[name] = true
		if p, ok := lookupFailpoint(name); !ok || p != failpoint(i) {
			t.Errorf("lookup %q = %d %v, want %d", name, p, ok, i)
		}
	}
}
