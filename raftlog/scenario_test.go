package raftlog

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios runs the stories in testdata/*.txt with
// github.com/cockroachdb/datadriven: each command is followed by "----" and
// the output it must print. `go test ./raftlog -run TestScenarios -rewrite`
// rewrites the expected output. Commands (ids are raft ids, from 1):
//
//	cluster <n> [prevote] [checkquorum] [seed=<s>]
//	trace on|off           print every message delivered or dropped, and
//	                       every role change, as the commands run
//	campaign <id> | propose <id> <data> | read <id> <ctx> | transfer <on> <to>
//	tick <k> [ids...]      k clock ticks on the given nodes (all by default)
//	stabilize | isolate <id> | heal
//	cut <from> <to> [type=<MsgType>]   drop messages on one link
//	trim <from> above=<index>          strip entries above index from
//	                                   <from>'s MsgApps; trim off to stop
//	restart <id> | compact <id> <index>
//	wipe <id>              replace <id> with a node that lost its data and
//	                       starts in recovering mode (serve --recover)
//	status | log <id> | applied <id> | reads <id>
//	add <on> <id>          start <id> empty (joining) if new, and propose
//	                       it as a learner on <on>
//	promote <on> <id> | remove <on> <id>   propose that change on <on>
//	conf                   every node's membership in force
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			s := &scenario{}
			datadriven.RunTest(t, file, func(t *testing.T, d *datadriven.TestData) string {
				return s.run(t, d)
			})
		})
	}
}

// scenario is one story's state: the network and the trace it prints.
type scenario struct {
	n     *network
	trace bool
	out   strings.Builder
	// cuts are the links cut for one message type only.
	cuts map[[2]uint64]MessageType
	// trimFrom/trimAbove: strip entries above trimAbove from trimFrom's MsgApps.
	trimFrom, trimAbove uint64
	// roles remembers each node's role and term to trace changes.
	roles map[uint64]string
	// opt is the cluster's config options, for nodes that join later.
	opt func(*Config)
}

func (s *scenario) run(t *testing.T, d *datadriven.TestData) string {
	s.out.Reset()
	arg := func(i int) uint64 {
		t.Helper()
		if i >= len(d.CmdArgs) {
			t.Fatalf("%s: %q needs argument %d", d.Pos, d.Cmd, i+1)
		}
		v, err := strconv.ParseUint(d.CmdArgs[i].Key, 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", d.Pos, d.Cmd, err)
		}
		return v
	}
	if d.Cmd == "cluster" {
		s.newCluster(t, d, int(arg(0)))
		return s.output("")
	}
	n := s.n
	if n == nil {
		t.Fatalf("%s: no cluster yet", d.Pos)
	}
	var out string
	switch d.Cmd {
	case "trace":
		s.trace = len(d.CmdArgs) > 0 && d.CmdArgs[0].Key == "on"
	case "campaign":
		_ = n.core(arg(0)).Campaign()
		n.stabilize()
	case "propose":
		if err := n.core(arg(0)).Propose([]byte(d.CmdArgs[1].Key)); err != nil {
			out = fmt.Sprintf("error: %v", err)
		}
		n.stabilize()
	case "read":
		n.core(arg(0)).ReadIndex([]byte(d.CmdArgs[1].Key))
		n.stabilize()
	case "transfer":
		n.core(arg(0)).TransferLeadership(arg(1))
		n.stabilize()
	case "tick":
		var only []uint64
		for i := 1; i < len(d.CmdArgs); i++ {
			only = append(only, arg(i))
		}
		n.tick(int(arg(0)), only...)
	case "stabilize":
		n.stabilize()
	case "isolate":
		n.isolate(arg(0))
	case "cut":
		link := [2]uint64{arg(0), arg(1)}
		if d.HasArg("type") {
			var name string
			d.ScanArgs(t, "type", &name)
			s.cuts[link] = messageTypeByName(t, name)
		} else {
			n.cut[link] = true
		}
	case "heal":
		n.heal()
		clear(s.cuts)
	case "trim":
		if d.CmdArgs[0].Key == "off" {
			s.trimFrom = 0
		} else {
			s.trimFrom = arg(0)
			d.ScanArgs(t, "above", &s.trimAbove)
		}
	case "restart":
		n.restart(arg(0))
	case "wipe":
		n.wipe(arg(0), true)
	case "compact":
		if err := n.nodes[arg(0)].storage.Compact(arg(1)); err != nil {
			out = fmt.Sprintf("error: %v", err)
		}
	case "add", "promote", "remove":
		id := arg(1)
		typ := map[string]ConfChangeType{"add": ConfAddLearner, "promote": ConfPromote, "remove": ConfRemove}[d.Cmd]
		if typ == ConfAddLearner {
			n.join(id, s.opt)
		}
		if err := n.change(arg(0), typ, id); err != nil {
			out = fmt.Sprintf("error: %v", err)
		}
	case "conf":
		var b strings.Builder
		for _, id := range n.ids {
			cs := n.core(id).Conf()
			fmt.Fprintf(&b, "%d: voters=%v learners=%v\n", id, cs.Voters, cs.Learners)
		}
		out = b.String()
	case "status":
		out = n.String()
	case "log":
		out = fmt.Sprint(n.logTerms(arg(0)))
	case "applied":
		out = fmt.Sprint(n.appliedData(arg(0)))
	case "reads":
		var rs []string
		for _, r := range n.nodes[arg(0)].readStates {
			rs = append(rs, fmt.Sprintf("%s@%d", r.Context, r.Index))
		}
		out = strings.Join(rs, " ")
	default:
		t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	}
	s.noteRoles()
	return s.output(out)
}

func (s *scenario) newCluster(t *testing.T, d *datadriven.TestData, size int) {
	var preVote, checkQuorum bool
	seed := int64(1)
	for _, a := range d.CmdArgs[1:] {
		switch a.Key {
		case "prevote":
			preVote = true
		case "checkquorum":
			checkQuorum = true
		case "seed":
			d.ScanArgs(t, "seed", &seed)
		default:
			t.Fatalf("%s: unknown option %q", d.Pos, a.Key)
		}
	}
	s.opt = func(c *Config) { c.PreVote, c.CheckQuorum = preVote, checkQuorum }
	s.n = newNetwork(t, seed, ids(size), s.opt)
	s.cuts = map[[2]uint64]MessageType{}
	s.roles = map[uint64]string{}
	s.trace = false
	s.n.filter = s.filter
	s.n.onCut = func(m Message) { s.traceMsg(m, "dropped") }
	s.noteRoles()
}

// filter applies the typed cuts and the trim, and traces every message.
func (s *scenario) filter(m Message) (Message, bool) {
	if s.cuts[[2]uint64{m.From, m.To}] == m.Type {
		s.traceMsg(m, "dropped")
		return m, false
	}
	if m.Type == MsgApp && m.From == s.trimFrom {
		m.Entries = slices.DeleteFunc(slices.Clone(m.Entries), func(e Entry) bool { return e.Index > s.trimAbove })
	}
	s.traceMsg(m, "")
	return m, true
}

// output joins the trace gathered while a command ran with its own output.
func (s *scenario) output(out string) string {
	if out != "" {
		s.out.WriteString(strings.TrimRight(out, "\n") + "\n")
	}
	if s.out.Len() == 0 {
		return "ok\n"
	}
	return s.out.String()
}

func (s *scenario) traceMsg(m Message, note string) {
	if !s.trace {
		return
	}
	fmt.Fprintf(&s.out, "%d->%d %s\n", m.From, m.To, strings.TrimSpace(describeMessage(m)+" "+note))
}

// noteRoles traces role and term changes since the last command.
func (s *scenario) noteRoles() {
	for _, id := range s.n.ids {
		st := s.n.core(id).Status()
		role := fmt.Sprintf("%v term=%d", st.Role, st.Term)
		if prev, ok := s.roles[id]; ok && prev != role && s.trace {
			fmt.Fprintf(&s.out, "node %d: %s -> %s\n", id, prev, role)
		}
		s.roles[id] = role
	}
}

// describeMessage prints the fields a message of its type carries, in the
// order a reader of the paper expects them.
func describeMessage(m Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v term=%d", m.Type, m.Term)
	switch m.Type {
	case MsgApp:
		fmt.Fprintf(&b, " prev=%d/%d commit=%d", m.Index, m.LogTerm, m.Commit)
		if len(m.Entries) > 0 {
			var es []string
			for _, e := range m.Entries {
				es = append(es, fmt.Sprintf("%d/%d", e.Index, e.Term))
			}
			fmt.Fprintf(&b, " entries=[%s]", strings.Join(es, " "))
		}
	case MsgAppResp:
		if m.Reject {
			fmt.Fprintf(&b, " reject index=%d hint=%d/%d", m.Index, m.RejectHint, m.LogTerm)
		} else {
			fmt.Fprintf(&b, " index=%d", m.Index)
		}
	case MsgVote, MsgPreVote:
		fmt.Fprintf(&b, " last=%d/%d", m.Index, m.LogTerm)
	case MsgVoteResp, MsgPreVoteResp:
		if m.Reject {
			b.WriteString(" rejected")
		} else {
			b.WriteString(" granted")
		}
	case MsgHeartbeat:
		fmt.Fprintf(&b, " commit=%d", m.Commit)
	}
	if m.Recovering {
		b.WriteString(" recovering")
	}
	if m.Demoted {
		b.WriteString(" demoted")
	}
	switch m.Type {
	case MsgSnap:
		fmt.Fprintf(&b, " snapshot=%d/%d", m.Snapshot.Index, m.Snapshot.Term)
	}
	if len(m.Context) > 0 && m.Type != MsgVote && m.Type != MsgPreVote {
		fmt.Fprintf(&b, " ctx=%s", m.Context)
	}
	return b.String()
}

func messageTypeByName(t *testing.T, name string) MessageType {
	for mt := MsgHup; mt <= MsgReadIndexResp; mt++ {
		if mt.String() == name {
			return mt
		}
	}
	t.Fatalf("unknown message type %q", name)
	return 0
}
