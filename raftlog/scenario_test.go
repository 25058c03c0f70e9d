package raftlog

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var rewriteScenarios = flag.Bool("rewrite", false, "rewrite the expected output in testdata/*.txt")

// TestScenarios runs the stories in testdata/*.txt. Each command line may
// be followed by "----" and the output it must print, up to a blank line.
// Lines starting with # are comments. Commands:
//
//	cluster <n> [prevote] [checkquorum] [seed=<s>]
//	campaign <id> | propose <id> <data> | read <id> <ctx> | transfer <on> <to>
//	tick <k> [ids...] | stabilize | isolate <id> | cut <from> <to> | heal
//	restart <id> | compact <id> <index>
//	status | log <id> | applied <id> | reads <id>
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScenario(t, file) })
	}
}

type scenarioStep struct {
	comments []string
	cmd      string
	want     string
	line     int
}

func parseScenario(t *testing.T, file string) []scenarioStep {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	var steps []scenarioStep
	var comments []string
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == "":
			continue
		case strings.HasPrefix(l, "#"):
			comments = append(comments, l)
			continue
		}
		st := scenarioStep{comments: comments, cmd: l, line: i + 1}
		comments = nil
		if i+1 < len(lines) && strings.TrimSpace(lines[i+1]) == "----" {
			i += 2
			var out []string
			for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
				out = append(out, lines[i])
			}
			st.want = strings.Join(out, "\n")
		}
		steps = append(steps, st)
	}
	return steps
}

func runScenario(t *testing.T, file string) {
	steps := parseScenario(t, file)
	var n *network
	var rewritten strings.Builder
	for _, st := range steps {
		got := strings.TrimRight(runScenarioCmd(t, &n, st), "\n")
		if len(st.comments) > 0 && rewritten.Len() > 0 && !strings.HasSuffix(rewritten.String(), "\n\n") {
			rewritten.WriteString("\n")
		}
		for _, c := range st.comments {
			rewritten.WriteString(c + "\n")
		}
		rewritten.WriteString(st.cmd + "\n")
		if got != "" {
			rewritten.WriteString("----\n" + got + "\n\n")
		}
		if !*rewriteScenarios && got != st.want {
			t.Fatalf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, st.line, st.cmd, got, st.want)
		}
	}
	if *rewriteScenarios {
		if err := os.WriteFile(file, []byte(rewritten.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runScenarioCmd(t *testing.T, np **network, st scenarioStep) string {
	f := strings.Fields(st.cmd)
	arg := func(i int) uint64 {
		if i >= len(f) {
			t.Fatalf("line %d: %q needs argument %d", st.line, st.cmd, i)
		}
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			t.Fatalf("line %d: %q: %v", st.line, st.cmd, err)
		}
		return v
	}
	if f[0] == "cluster" {
		var preVote, checkQuorum bool
		seed := int64(1)
		for _, o := range f[2:] {
			switch {
			case o == "prevote":
				preVote = true
			case o == "checkquorum":
				checkQuorum = true
			case strings.HasPrefix(o, "seed="):
				s, _ := strconv.ParseInt(strings.TrimPrefix(o, "seed="), 10, 64)
				seed = s
			default:
				t.Fatalf("line %d: unknown option %q", st.line, o)
			}
		}
		*np = newNetwork(t, seed, ids(int(arg(1))), func(c *Config) { c.PreVote, c.CheckQuorum = preVote, checkQuorum })
		return ""
	}
	n := *np
	if n == nil {
		t.Fatalf("line %d: no cluster yet", st.line)
	}
	switch f[0] {
	case "campaign":
		_ = n.core(arg(1)).Campaign()
		n.stabilize()
	case "propose":
		if err := n.core(arg(1)).Propose([]byte(f[2])); err != nil {
			return fmt.Sprintf("error: %v", err)
		}
		n.stabilize()
	case "read":
		n.core(arg(1)).ReadIndex([]byte(f[2]))
		n.stabilize()
	case "transfer":
		n.core(arg(1)).TransferLeadership(arg(2))
		n.stabilize()
	case "tick":
		var only []uint64
		for i := 2; i < len(f); i++ {
			only = append(only, arg(i))
		}
		n.tick(int(arg(1)), only...)
	case "stabilize":
		n.stabilize()
	case "isolate":
		n.isolate(arg(1))
	case "cut":
		n.cut[[2]uint64{arg(1), arg(2)}] = true
	case "heal":
		n.heal()
	case "restart":
		n.restart(arg(1))
	case "compact":
		if err := n.nodes[arg(1)].storage.Compact(arg(2)); err != nil {
			return fmt.Sprintf("error: %v", err)
		}
	case "status":
		return n.String()
	case "log":
		return fmt.Sprint(n.logTerms(arg(1)))
	case "applied":
		return fmt.Sprint(n.appliedData(arg(1)))
	case "reads":
		var out []string
		for _, rs := range n.nodes[arg(1)].readStates {
			out = append(out, fmt.Sprintf("%s@%d", rs.Context, rs.Index))
		}
		return strings.Join(out, " ")
	default:
		t.Fatalf("line %d: unknown command %q", st.line, f[0])
	}
	return ""
}
