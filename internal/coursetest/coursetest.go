// Package coursetest holds, for tests only, the README's protocol table as
// the course documents it: each request in order and its exact answer. The
// codec's round-trip test, the broker's in-process protocol test and e2e's
// course-style test all walk this one table.
package coursetest

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

//go:embed outcomes.json
var outcomesJSON []byte

// Outcome is one request and its exact answer, both as raw JSON frames.
type Outcome struct {
	Request string `json:"request"`
	Answer  string `json:"answer"`
}

// Outcomes returns the table in order.
func Outcomes() []Outcome {
	var out []Outcome
	if err := json.Unmarshal(outcomesJSON, &out); err != nil || len(out) == 0 {
		panic(fmt.Sprintf("coursetest: outcomes.json: %v (%d rows)", err, len(out)))
	}
	return out
}
