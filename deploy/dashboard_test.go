package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/metrics"
)

// TestGrafanaDashboard: the dashboard JSON parses, has panels with
// queries, and every raftmq metric its queries name is one the broker
// exports (a renamed metric would leave an empty panel).
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard without a title or panels: %+v", dash)
	}
	exported := exportedNames(t)
	named := regexp.MustCompile(`\braftmq_[a-z_]+`)
	seen := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, name := range named.FindAllString(tg.Expr, -1) {
				seen++
				if !exported[name] {
					t.Errorf("panel %q queries %s, which the broker does not export", p.Title, name)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no panel names a raftmq metric")
	}
}

// exportedNames gathers a broker registry (fed by a fake source that has a
// topic and a peer, so every family has a series) and returns each name a
// query can use, histograms' _bucket, _sum and _count series included.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New(fakeSource{}, metrics.Options{TopicLimit: 10})
	m.ObserveLogCommit(0, 1)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		name := f.GetName()
		names[name] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
		}
	}
	if !names["raftmq_raft_is_leader"] || !strings.HasPrefix(fams[0].GetName(), "go_") {
		t.Fatalf("gathered names look wrong: %v", names)
	}
	return names
}

type fakeSource struct{}

func (fakeSource) Snapshot() metrics.Snapshot {
	return metrics.Snapshot{PeerLag: map[string]uint64{"1": 0}, Topics: []metrics.Topic{{Name: "t"}}}
}

func (fakeSource) Ready() (bool, string) { return true, "" }
