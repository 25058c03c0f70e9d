package e2e

// Tests in the style of the course's own suites: the built binary, started
// with `raftmq serve --config CONFIG --id I --data-dir DIR` and the default
// timing, driven by plain REQ sockets sending the course's JSON, with the
// course's waits (0.3 s after a start before the first request, 2 s for an
// election) and its exact answers. (Written for raftmq; none of the
// course's files are copied.)

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/coursetest"
	"github.com/raftmq/raftmq/internal/proccluster"
)

// courseRuns is how many times TestCourseSuite runs its scenario; CI runs
// it once, the acceptance run is -course.runs=20.
var courseRuns = flag.Int("course.runs", 1, "runs of the 5-node course-style suite (TestCourseSuite)")

// The course's waits. They are the scenario's timing, as the course
// suites use it, not stand-ins for a condition.
const (
	courseStartWait    = 300 * time.Millisecond // after starting a node, before the first request
	courseElectionWait = 2 * time.Second        // after starting or stopping nodes, before looking for the leader
	courseStopBudget   = 5 * time.Second        // the course allows this much for each SIGTERM
	// courseReplyTimeout bounds one request; generous, since the machine
	// may be loaded (the course waits on its sockets without a bound).
	courseReplyTimeout = 10 * time.Second
)

// courseAsk sends one frame as a course client does.
func courseAsk(addr, frame string) ([]byte, error) {
	return coursetest.Ask(addr, frame, courseReplyTimeout)
}

// courseExpect sends frame to node i and requires the reply to be exactly
// want, byte for byte.
func courseExpect(t *testing.T, c *proccluster.Cluster, i int, frame, want string) {
	t.Helper()
	got, err := courseAsk(c.Addrs[i].ClientAddr(), frame)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("node %d: %s\n got  %s\n want %s", i, frame, got, want)
	}
}

// courseStatus is the part of GET status the course reads.
type courseStatus struct {
	Role string `json:"role"`
	Term uint64 `json:"term"`
}

func courseStatusOf(c *proccluster.Cluster, i int) (courseStatus, error) {
	raw, err := courseAsk(c.Addrs[i].ClientAddr(), `{"type":"status","method":"GET"}`)
	if err != nil {
		return courseStatus{}, err
	}
	var st courseStatus
	if err := json.Unmarshal(raw, &st); err != nil || st.Role == "" {
		return courseStatus{}, fmt.Errorf("node %d status %s: %v", i, raw, err)
	}
	return st, nil
}

// courseLeader asks every running node for its status, as the course does
// after its election wait, and returns the one leader of the highest term.
// More than one leader in that term, or none, is an error.
func courseLeader(c *proccluster.Cluster) (int, uint64, error) {
	leader, term, leaders := -1, uint64(0), 0
	sts := map[int]courseStatus{}
	for i := range c.Addrs {
		if !c.Running(i) {
			continue
		}
		st, err := courseStatusOf(c, i)
		if err != nil {
			return -1, 0, err
		}
		sts[i] = st
		if st.Role == "Leader" && st.Term >= term {
			if st.Term > term {
				leaders = 0
			}
			leader, term = i, st.Term
			leaders++
		}
	}
	if leaders != 1 {
		return -1, 0, fmt.Errorf("%d leaders in the highest term %d: %v", leaders, term, sts)
	}
	return leader, term, nil
}

func newCourseCluster(t *testing.T, nodes int) *proccluster.Cluster {
	t.Helper()
	c, err := proccluster.NewCluster(bin, t.TempDir(), proccluster.Options{Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	closeWithLogs(t, c)
	return c
}

// courseStop stops node i with SIGTERM within the course's budget.
func courseStop(t *testing.T, c *proccluster.Cluster, i int) time.Duration {
	t.Helper()
	took, err := c.Stop(i, courseStopBudget)
	if err != nil {
		t.Fatalf("SIGTERM of node %d: %v (after %v)", i, err, took)
	}
	return took
}

// TestCourseSingleNodeLeadsAtOnce: one node answers its first topic
// request 0.3 s after it starts, 20 times in a row, each time on a fresh
// data directory and again after a restart on the same one.
func TestCourseSingleNodeLeadsAtOnce(t *testing.T) {
	const rounds = 20
	for r := 0; r < rounds; r++ {
		c := newCourseCluster(t, 1)
		for life, topics := 0, []string{}; life < 2; life++ { // fresh, then restarted
			if err := c.Start(0); err != nil {
				t.Fatal(err)
			}
			time.Sleep(courseStartWait)
			st, err := courseStatusOf(c, 0)
			if err != nil {
				t.Fatal(err)
			}
			if st.Role != "Leader" {
				t.Fatalf("round %d life %d: status %+v 0.3 s after start, want Leader", r, life, st)
			}
			topic := fmt.Sprintf("t%d", life)
			courseExpect(t, c, 0, fmt.Sprintf(`{"type":"topic","method":"PUT","topic":%q}`, topic), `{"success":true}`)
			topics = append(topics, topic)
			b, _ := json.Marshal(topics)
			courseExpect(t, c, 0, `{"type":"topic","method":"GET"}`, `{"success":true,"topics":`+string(b)+`}`)
			courseStop(t, c, 0)
		}
	}
}

// courseMalformed are the malformed requests of the course's suites and
// their kin, each with the error code raftmq gives when asked in its own
// dialect.
var courseMalformed = []struct{ name, frame, code string }{
	{"no type", `{"method":"GET"}`, "bad_request"},
	{"no method", `{"type":"topic"}`, "bad_request"},
	{"no type no method", `{"topic":"t"}`, "bad_request"},
	{"message put without topic", `{"type":"message","method":"PUT","message":"m"}`, "bad_request"},
	{"message put without message", `{"type":"message","method":"PUT","topic":"t"}`, "bad_request"},
	{"message get without topic", `{"type":"message","method":"GET"}`, "bad_request"},
	{"topic put without topic", `{"type":"topic","method":"PUT"}`, "bad_request"},
	{"unknown type", `{"type":"queue","method":"GET"}`, "bad_request"},
	{"unknown method", `{"type":"topic","method":"DELETE"}`, "bad_request"},
	{"topic not a string", `{"type":"topic","method":"PUT","topic":7}`, "bad_request"},
	{"message too large", `{"type":"message","method":"PUT","topic":"t","message":"` + strings.Repeat("x", 1<<20+1) + `"}`, "too_large"},
	{"not an object", `["topic"]`, ""},
	{"not json", `hello`, ""},
}

// TestCourseMalformedRequests: every malformed request in the course's
// vocabulary is answered exactly {"success":false}; the same request with a
// client_id gets success false with an error code and a detail. Nothing is
// created by either.
func TestCourseMalformedRequests(t *testing.T) {
	c := newCourseCluster(t, 1)
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(courseStartWait)
	courseExpect(t, c, 0, `{"type":"topic","method":"PUT","topic":"t"}`, `{"success":true}`)
	course := 0
	for _, m := range courseMalformed {
		courseExpect(t, c, 0, m.frame, `{"success":false}`)
		course++
		if m.code == "" {
			continue // not an object: nowhere to put a client_id
		}
		withID := `{"client_id":"c",` + m.frame[1:]
		raw, err := courseAsk(c.Addrs[0].ClientAddr(), withID)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s with client_id: reply %s: %v", m.name, raw, err)
		}
		if d, _ := got["detail"].(string); got["success"] != false || got["error"] != m.code || d == "" {
			t.Fatalf("%s with client_id: reply %s, want success false, error %q and a detail", m.name, raw, m.code)
		}
	}
	courseExpect(t, c, 0, `{"type":"topic","method":"GET"}`, `{"success":true,"topics":["t"]}`)
	courseExpect(t, c, 0, `{"type":"message","method":"GET","topic":"t"}`, `{"success":false}`)
	// The hidden reasons are counted.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := c.Status(0, 2*time.Second)
		if err == nil && st.Refused >= uint64(course) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status refused %d (err %v), want at least %d", st.Refused, err, course)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCourseDocumentedOutcomes: each documented outcome is the same, byte
// for byte, whether the request speaks the course's dialect or raftmq's
// (client_id and seq): the dialects differ only in refusals. Then the
// refusals of a cluster: a follower answers a write {"success":false}, or
// not_leader with the leader's address; a node without a leader answers
// {"success":false}, or no_leader.
func TestCourseDocumentedOutcomes(t *testing.T) {
	for _, dialect := range []string{"course", "raftmq"} {
		t.Run(dialect, func(t *testing.T) {
			c := newCourseCluster(t, 1)
			if err := c.Start(0); err != nil {
				t.Fatal(err)
			}
			time.Sleep(courseStartWait)
			for i, o := range coursetest.Outcomes() {
				req := o.Request
				if dialect == "raftmq" {
					req = fmt.Sprintf(`{"client_id":"outcomes","seq":%d,`, i+1) + req[1:]
				}
				courseExpect(t, c, 0, req, o.Answer)
			}
		})
	}

	t.Run("refusals", func(t *testing.T) {
		c := newCourseCluster(t, 3)
		if err := c.StartAll(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(courseElectionWait)
		lead, _, err := waitCourseLeader(c)
		if err != nil {
			t.Fatal(err)
		}
		follower := (lead + 1) % 3
		put := `{"type":"topic","method":"PUT","topic":"q"}`
		withID := `{"client_id":"c","seq":1,` + put[1:]
		notLeader := fmt.Sprintf(
			`{"success":false,"error":"not_leader","detail":"this broker is a follower; send the request to the leader at %[1]s","leader":%[1]q}`,
			c.Addrs[lead].ClientAddr())
		courseEventually(t, c, follower, withID, notLeader) // the follower has heard from the leader
		courseExpect(t, c, follower, put, `{"success":false}`)
		courseExpect(t, c, follower, withID, notLeader)
		// Without a majority the follower is left with no leader.
		if err := c.Kill(lead); err != nil {
			t.Fatal(err)
		}
		if err := c.Kill((lead + 2) % 3); err != nil {
			t.Fatal(err)
		}
		time.Sleep(courseElectionWait)
		noLeader := `{"success":false,"error":"no_leader","detail":"no leader is elected right now; retry shortly"}`
		courseEventually(t, c, follower, withID, noLeader) // its election timeout has passed
		courseExpect(t, c, follower, put, `{"success":false}`)
		courseExpect(t, c, follower, withID, noLeader)
	})
}

// courseEventually repeats frame to node i until the reply is exactly
// want: a state the scenario reaches, on a loaded machine maybe later than
// the course's waits.
func courseEventually(t *testing.T, c *proccluster.Cluster, i int, frame, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := courseAsk(c.Addrs[i].ClientAddr(), frame)
		if err == nil && string(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: %s\n last reply %s (%v)\n want %s", i, frame, got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCourseLeader is courseLeader retried for a while: on a loaded
// machine an election may take longer than the course's 2 s wait.
func waitCourseLeader(c *proccluster.Cluster) (int, uint64, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		lead, term, err := courseLeader(c)
		if err == nil || time.Now().After(deadline) {
			return lead, term, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCourseSigtermDeadBestFollower: the leader's follower that ties for
// the highest match index (and comes first on the tie) was killed two
// seconds ago. SIGTERM of the leader must not try to hand over to it: the
// leader stops promptly, and the remaining three elect a leader.
func TestCourseSigtermDeadBestFollower(t *testing.T) {
	c := newCourseCluster(t, 5)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(courseElectionWait)
	lead, term, err := waitCourseLeader(c)
	if err != nil {
		t.Fatal(err)
	}
	courseExpect(t, c, lead, `{"type":"topic","method":"PUT","topic":"q"}`, `{"success":true}`)
	courseExpect(t, c, lead, `{"type":"message","method":"PUT","topic":"q","message":"m"}`, `{"success":true}`)
	// Every follower holds the log now (no write follows), so they tie on
	// match; the lowest id comes first on a tie.
	dead := 0
	if dead == lead {
		dead = 1
	}
	if err := c.Kill(dead); err != nil {
		t.Fatal(err)
	}
	time.Sleep(courseElectionWait) // the follower has been dead for longer than an election timeout
	took := courseStop(t, c, lead)
	t.Logf("leader %d (term %d) stopped in %v with follower %d dead", lead, term, took, dead)
	// The issue asks for 1 s; the bound is generous for a loaded machine,
	// yet well below the 4 s a transfer to the dead follower would spend.
	if took > 2500*time.Millisecond {
		t.Fatalf("leader took %v to stop with its best follower dead", took)
	}
	time.Sleep(courseElectionWait)
	newLead, newTerm, err := waitCourseLeader(c)
	if err != nil {
		t.Fatal(err)
	}
	if newLead == lead || newLead == dead || newTerm <= term {
		t.Fatalf("new leader %d term %d after leader %d term %d stopped", newLead, newTerm, lead, term)
	}
	courseExpect(t, c, newLead, `{"type":"message","method":"GET","topic":"q"}`, `{"success":true,"message":"m"}`)
}

// TestCourseSuite is a course-style scenario on five nodes, run
// -course.runs times in a row (CI: once; the acceptance run: 20): starts
// and SIGTERM stops one after another with the course's waits, leaders
// found through GET status, data written through each leader and read
// through the next, and every stop within the course's 5 s.
func TestCourseSuite(t *testing.T) {
	if *courseRuns < 1 {
		t.Skip("-course.runs < 1")
	}
	start := time.Now()
	var stops []time.Duration
	for run := 0; run < *courseRuns; run++ {
		ok := t.Run(fmt.Sprintf("run%02d", run), func(t *testing.T) {
			stops = append(stops, courseScenario(t)...)
		})
		if !ok {
			t.Fatalf("run %d of %d failed", run+1, *courseRuns)
		}
	}
	var worst time.Duration
	for _, d := range stops {
		worst = max(worst, d)
	}
	t.Logf("%d runs passed in %v; %d SIGTERM stops, the slowest %v", *courseRuns, time.Since(start).Round(time.Millisecond), len(stops), worst)
}

// courseScenario runs one pass of the suite and returns how long each
// SIGTERM stop took.
func courseScenario(t *testing.T) []time.Duration {
	c := newCourseCluster(t, 5)
	var stops []time.Duration
	stop := func(i int) { stops = append(stops, courseStop(t, c, i)) }

	// Every node answers status 0.3 s after it starts; one leader after 2 s.
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(courseStartWait)
	for i := range c.Addrs {
		if _, err := courseStatusOf(c, i); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(courseElectionWait)
	lead, term, err := waitCourseLeader(c)
	if err != nil {
		t.Fatal(err)
	}
	courseExpect(t, c, lead, `{"type":"topic","method":"PUT","topic":"q"}`, `{"success":true}`)
	for i := 0; i < 3; i++ {
		courseExpect(t, c, lead, fmt.Sprintf(`{"type":"message","method":"PUT","topic":"q","message":"m%d"}`, i), `{"success":true}`)
	}
	courseExpect(t, c, (lead+1)%5, `{"type":"message","method":"PUT","topic":"q","message":"x"}`, `{"success":false}`)

	// Stop the leader: the others elect a new one in a later term, which
	// serves what the first acknowledged.
	stop(lead)
	time.Sleep(courseElectionWait)
	lead2, term2, err := waitCourseLeader(c)
	if err != nil {
		t.Fatal(err)
	}
	if term2 <= term {
		t.Fatalf("new leader %d in term %d, not after term %d", lead2, term2, term)
	}
	courseExpect(t, c, lead2, `{"type":"message","method":"GET","topic":"q"}`, `{"success":true,"message":"m0"}`)
	courseExpect(t, c, lead2, `{"type":"topic","method":"PUT","topic":"r"}`, `{"success":true}`)

	// Stop a follower: three of five are left, enough to go on.
	for i := range c.Addrs {
		if i != lead2 && c.Running(i) {
			stop(i)
			break
		}
	}
	time.Sleep(courseElectionWait)
	lead3, _, err := waitCourseLeader(c)
	if err != nil {
		t.Fatal(err)
	}
	courseExpect(t, c, lead3, `{"type":"message","method":"PUT","topic":"r","message":"r0"}`, `{"success":true}`)

	// Restart every stopped node: one leader again, everything kept.
	for i := range c.Addrs {
		if !c.Running(i) {
			if err := c.Start(i); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(courseElectionWait)
	lead4, _, err := waitCourseLeader(c)
	if err != nil {
		t.Fatal(err)
	}
	courseExpect(t, c, lead4, `{"type":"topic","method":"GET"}`, `{"success":true,"topics":["q","r"]}`)
	courseExpect(t, c, lead4, `{"type":"message","method":"GET","topic":"q"}`, `{"success":true,"message":"m1"}`)

	// Stop the leader again, with everyone else up.
	stop(lead4)
	time.Sleep(courseElectionWait)
	lead5, _, err := waitCourseLeader(c)
	if err != nil {
		t.Fatal(err)
	}
	courseExpect(t, c, lead5, `{"type":"message","method":"GET","topic":"q"}`, `{"success":true,"message":"m2"}`)
	courseExpect(t, c, lead5, `{"type":"message","method":"GET","topic":"r"}`, `{"success":true,"message":"r0"}`)

	// Stop the rest one after another, the leader first whenever there is
	// one: each stop within the course's budget, whether or not a majority
	// is left to take over.
	for {
		next := -1
		for i := range c.Addrs {
			if !c.Running(i) {
				continue
			}
			if next < 0 {
				next = i
			}
			if st, err := courseStatusOf(c, i); err == nil && st.Role == "Leader" {
				next = i
			}
		}
		if next < 0 {
			break
		}
		stop(next)
	}
	return stops
}
