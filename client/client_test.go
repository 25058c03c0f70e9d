package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/broker/wire"
	"github.com/raftmq/raftmq/client/clienttest"
)

const testSeed = 20240601

// sleeps records the backoffs a Client asked for, without sleeping.
type sleeps struct {
	mu sync.Mutex
	ds []time.Duration
	// after, when set, runs after each recorded sleep (e.g. to cancel).
	after func(n int)
}

func (s *sleeps) sleep(ctx context.Context, _ <-chan struct{}, d time.Duration) error {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	n := len(s.ds)
	s.mu.Unlock()
	if s.after != nil {
		s.after(n)
	}
	return ctx.Err()
}

func (s *sleeps) list() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.ds...)
}

func newTestClient(t *testing.T, o Options) (*Client, *sleeps) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rand seed %d", testSeed)
		}
	})
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(testSeed, testSeed))
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = 2 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s := &sleeps{}
	c.sleep = s.sleep
	t.Cleanup(func() { c.Close() })
	return c, s
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// sessionOf checks that every request carries the client's id and seq.
func sessionOf(t *testing.T, c *Client, want uint64, got []clienttest.Seen) {
	t.Helper()
	for i, s := range got {
		if !s.Req.HasSession || s.Req.ClientID != c.ClientID() || s.Req.Seq != want {
			t.Errorf("request %d: session (%v %q %d), want (true %q %d)", i, s.Req.HasSession, s.Req.ClientID, s.Req.Seq, c.ClientID(), want)
		}
	}
}

func TestRedirectOnNotLeader(t *testing.T) {
	a := clienttest.NewBroker(t)
	b := clienttest.NewBroker(t, clienttest.Step{Reply: `{"success":true}`}, clienttest.Step{Reply: `{"success":true}`})
	a.SetScript(clienttest.Step{Reply: fmt.Sprintf(`{"success":false,"error":"not_leader","leader":%q}`, b.Addr)})
	c, sl := newTestClient(t, Options{Servers: []string{a.Addr, b.Addr}})
	ctx := ctxTimeout(t, 10*time.Second)

	created, err := c.CreateTopic(ctx, "t")
	if err != nil || !created {
		t.Fatalf("CreateTopic = %v, %v; want true, nil", created, err)
	}
	ok, err := c.Put(ctx, "t", "m")
	if err != nil || !ok {
		t.Fatalf("Put = %v, %v; want true, nil", ok, err)
	}
	ra, rb := a.Requests(), b.Requests()
	if len(ra) != 1 || len(rb) != 2 {
		t.Fatalf("requests a=%d b=%d, want 1 and 2 (the leader is remembered)", len(ra), len(rb))
	}
	sessionOf(t, c, 1, append(ra, rb[0]))
	sessionOf(t, c, 2, rb[1:])
	if len(sl.list()) != 0 {
		t.Errorf("backoffs %v: following a leader hint must not back off", sl.list())
	}
}

func TestRetriesKeepSessionAndBackOff(t *testing.T) {
	noLeader := clienttest.Step{Reply: `{"success":false,"error":"no_leader","detail":"election in progress"}`}
	tests := []struct {
		name    string
		code    string // error code answered before success
		retries int
	}{
		{"no_leader", "no_leader", 3},
		{"server timeout", "timeout", 2},
		{"shutting down", "shutting_down", 1},
		{"overloaded", "overloaded", 2},
		{"not_leader without hint", "not_leader", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var script []clienttest.Step
			for range tt.retries {
				st := noLeader
				st.Reply = fmt.Sprintf(`{"success":false,"error":%q}`, tt.code)
				script = append(script, st)
			}
			script = append(script, clienttest.Step{Reply: `{"success":true,"message":"m1"}`}, clienttest.Step{Reply: `{"success":false}`})
			a := clienttest.NewBroker(t, script...)
			c, sl := newTestClient(t, Options{Servers: []string{a.Addr}, BackoffBase: 8 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
			ctx := ctxTimeout(t, 10*time.Second)
			msg, ok, err := c.Pop(ctx, "t")
			if err != nil || !ok || msg != "m1" {
				t.Fatalf("Pop = %q, %v, %v; want m1, true, nil", msg, ok, err)
			}
			got := a.Requests()
			if len(got) != tt.retries+1 {
				t.Fatalf("%d requests, want %d", len(got), tt.retries+1)
			}
			sessionOf(t, c, 1, got)
			ds := sl.list()
			if len(ds) != tt.retries {
				t.Fatalf("backoffs %v, want %d", ds, tt.retries)
			}
			for n, d := range ds {
				hi := min(8*time.Millisecond<<n, 20*time.Millisecond)
				if d < hi/2 || d > hi {
					t.Errorf("backoff %d = %v, want in [%v, %v]", n, d, hi/2, hi)
				}
			}
			// The next request is new: seq+1; an empty queue is a value, not an error.
			_, ok, err = c.Pop(ctx, "t")
			if err != nil || ok {
				t.Fatalf("second Pop = %v, %v; want false, nil", ok, err)
			}
			sessionOf(t, c, 2, a.Requests()[tt.retries+1:])
		})
	}
}

func TestTimeoutThenNextServer(t *testing.T) {
	a := clienttest.NewBroker(t, clienttest.Step{Drop: true})
	b := clienttest.NewBroker(t, clienttest.Step{Reply: `{"success":true}`})
	c, sl := newTestClient(t, Options{Servers: []string{a.Addr, b.Addr}, AttemptTimeout: 200 * time.Millisecond})
	ok, err := c.Put(ctxTimeout(t, 10*time.Second), "t", "m")
	if err != nil || !ok {
		t.Fatalf("Put = %v, %v; want true, nil", ok, err)
	}
	ra, rb := a.Requests(), b.Requests()
	if len(ra) != 1 || len(rb) != 1 {
		t.Fatalf("requests a=%d b=%d, want 1 each", len(ra), len(rb))
	}
	sessionOf(t, c, 1, append(ra, rb...))
	if len(sl.list()) != 1 {
		t.Errorf("backoffs %v, want one after the timeout", sl.list())
	}
}

func TestUnreachableThenNextServer(t *testing.T) {
	dead := clienttest.DeadAddr(t)
	b := clienttest.NewBroker(t, clienttest.Step{Reply: `{"success":true,"topics":["x","y"]}`})
	c, _ := newTestClient(t, Options{Servers: []string{dead, b.Addr}, ConnectTimeout: 200 * time.Millisecond})
	topics, err := c.ListTopics(ctxTimeout(t, 10*time.Second))
	if err != nil || fmt.Sprint(topics) != "[x y]" {
		t.Fatalf("ListTopics = %v, %v; want [x y], nil", topics, err)
	}
	if got := b.Requests(); len(got) != 1 || got[0].Req.HasSession {
		t.Fatalf("requests %+v: want one read without a session", got)
	}
}

func TestLateReplyIsNotTheNextAnswer(t *testing.T) {
	a := clienttest.NewBroker(t,
		clienttest.Step{Drop: true},
		clienttest.Step{Late: `{"success":true,"message":"LATE"}`, Reply: `{"success":true,"message":"RIGHT"}`},
		clienttest.Step{Reply: `{"success":true,"message":"NEXT"}`},
	)
	c, _ := newTestClient(t, Options{Servers: []string{a.Addr}, AttemptTimeout: 200 * time.Millisecond})
	ctx := ctxTimeout(t, 10*time.Second)
	for _, want := range []string{"RIGHT", "NEXT"} {
		msg, ok, err := c.Pop(ctx, "t")
		if err != nil || !ok || msg != want {
			t.Fatalf("Pop = %q, %v, %v; want %q", msg, ok, err, want)
		}
	}
	got := a.Requests()
	if len(got) != 3 || got[0].Identity == got[1].Identity {
		t.Fatalf("requests %d, identities %q %q: want a new socket after the timeout", len(got), got[0].Identity, got[1].Identity)
	}
}

func TestContextDeadlineRespected(t *testing.T) {
	a := clienttest.NewBroker(t, clienttest.Step{Drop: true}, clienttest.Step{Drop: true})
	c, _ := newTestClient(t, Options{Servers: []string{a.Addr}, AttemptTimeout: 30 * time.Second, Timeout: time.Minute})
	c.sleep = sleepCtx
	start := time.Now()
	_, err := c.Put(ctxTimeout(t, 300*time.Millisecond), "t", "m")
	took := time.Since(start)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want ErrTimeout and DeadlineExceeded", err)
	}
	if took > 3*time.Second {
		t.Fatalf("Put returned after %v; the context allowed 300ms", took)
	}
	// Options.Timeout bounds a call whose context has no deadline.
	c2, _ := newTestClient(t, Options{Servers: []string{a.Addr}, AttemptTimeout: 30 * time.Second, Timeout: 300 * time.Millisecond})
	if _, err := c2.ListTopics(context.Background()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v; want ErrTimeout from Options.Timeout", err)
	}
}

func TestNoLeaderTriesEveryServerAndGivesUp(t *testing.T) {
	const rounds = 3
	var script []clienttest.Step
	for range rounds * 2 {
		script = append(script, clienttest.Step{Reply: `{"success":false,"error":"no_leader"}`})
	}
	a, b := clienttest.NewBroker(t, script...), clienttest.NewBroker(t, script...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, sl := newTestClient(t, Options{Servers: []string{a.Addr, b.Addr}, BackoffBase: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond})
	sl.after = func(n int) {
		if n == 2*rounds {
			cancel()
		}
	}
	_, err := c.CreateTopic(ctx, "t")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrNoLeader) {
		t.Fatalf("err = %v; want Canceled wrapping the last no_leader", err)
	}
	if na, nb := len(a.Requests()), len(b.Requests()); na != rounds || nb != rounds {
		t.Fatalf("requests a=%d b=%d; want %d each (servers alternate)", na, nb, rounds)
	}
	ds := sl.list()
	for n, d := range ds {
		hi := min(10*time.Millisecond<<n, 40*time.Millisecond)
		if d < hi/2 || d > hi {
			t.Errorf("backoff %d = %v, want in [%v, %v]", n, d, hi/2, hi)
		}
	}
	// Out of time: the sentinel says why.
	a.SetHandler(clienttest.Always(clienttest.Step{Reply: `{"success":false,"error":"no_leader"}`}))
	c2, _ := newTestClient(t, Options{Servers: []string{a.Addr}, Timeout: 200 * time.Millisecond})
	c2.sleep = sleepCtx
	if _, err := c2.CreateTopic(context.Background(), "t"); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("err = %v; want ErrNoLeader", err)
	}
}

func TestRefusalsAreServerErrors(t *testing.T) {
	for _, code := range []string{"bad_request", "too_large", "internal", "stale_seq"} {
		t.Run(code, func(t *testing.T) {
			a := clienttest.NewBroker(t, clienttest.Step{Reply: fmt.Sprintf(`{"success":false,"error":%q,"detail":"why"}`, code)})
			c, _ := newTestClient(t, Options{Servers: []string{a.Addr}})
			_, err := c.Put(ctxTimeout(t, 10*time.Second), "t", "m")
			var se *ServerError
			if !errors.As(err, &se) || se.Code != code || se.Detail != "why" || se.Server != a.Addr {
				t.Fatalf("err = %#v; want *ServerError{%s, why, %s}", err, code, a.Addr)
			}
			if n := len(a.Requests()); n != 1 {
				t.Fatalf("%d requests: a refusal must not be retried", n)
			}
		})
	}
}

func TestAnswersNo(t *testing.T) {
	a := clienttest.NewBroker(t,
		clienttest.Step{Reply: `{"success":false}`}, clienttest.Step{Reply: `{"success":false}`}, clienttest.Step{Reply: `{"success":false}`},
		clienttest.Step{Reply: `{"success":true,"topics":[]}`},
	)
	c, _ := newTestClient(t, Options{Servers: []string{a.Addr}})
	ctx := ctxTimeout(t, 10*time.Second)
	if created, err := c.CreateTopic(ctx, "t"); created || err != nil {
		t.Errorf("CreateTopic = %v, %v; want false, nil", created, err)
	}
	if ok, err := c.Put(ctx, "t", ""); ok || err != nil {
		t.Errorf("Put = %v, %v; want false, nil", ok, err)
	}
	if _, ok, err := c.Pop(ctx, "t"); ok || err != nil {
		t.Errorf("Pop = %v, %v; want false, nil", ok, err)
	}
	if topics, err := c.ListTopics(ctx); err != nil || topics == nil || len(topics) != 0 {
		t.Errorf("ListTopics = %#v, %v; want empty, nil", topics, err)
	}
	got := a.Requests()
	for i, want := range []uint64{1, 2, 3} {
		if got[i].Req.Seq != want {
			t.Errorf("request %d seq %d, want %d", i, got[i].Req.Seq, want)
		}
	}
	if got[1].Req.Message != "" || got[1].Req.Type != "message" || got[1].Req.Method != "PUT" {
		t.Errorf("put request %+v: want an empty message sent as such", got[1].Req)
	}
}

func TestConcurrentUseSerializesSeqs(t *testing.T) {
	const workers, each = 4, 10
	var script []clienttest.Step
	for range workers * each {
		script = append(script, clienttest.Step{Reply: `{"success":true}`})
	}
	a := clienttest.NewBroker(t, script...)
	c, _ := newTestClient(t, Options{Servers: []string{a.Addr}})
	ctx := ctxTimeout(t, 20*time.Second)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if ok, err := c.Put(ctx, "t", fmt.Sprint(w, i)); !ok || err != nil {
					t.Errorf("Put = %v, %v", ok, err)
				}
			}
		}()
	}
	wg.Wait()
	got := a.Requests()
	if len(got) != workers*each {
		t.Fatalf("%d requests, want %d", len(got), workers*each)
	}
	for i, s := range got {
		if s.Req.Seq != uint64(i+1) {
			t.Fatalf("request %d seq %d: seqs must arrive in order, one per request", i, s.Req.Seq)
		}
	}
}

func TestCloseAbortsRequest(t *testing.T) {
	a := clienttest.NewBroker(t, clienttest.Step{Drop: true})
	c, _ := newTestClient(t, Options{Servers: []string{a.Addr}, AttemptTimeout: 30 * time.Second, Timeout: time.Minute})
	errCh := make(chan error, 1)
	go func() {
		_, err := c.Put(context.Background(), "t", "m")
		errCh <- err
	}()
	<-a.Got() // the request is in flight
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errCh; !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v; want ErrClosed", err)
	}
	if _, err := c.ListTopics(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: err = %v; want ErrClosed", err)
	}
}

func TestStatus(t *testing.T) {
	a := clienttest.NewBroker(t, clienttest.Step{Reply: `{"role":"Leader","term":7,"id":0,"commit_index":12,"applied_index":12,"last_log_index":13,"address":"A","log_syncs":5,"log_entries":40}`})
	b := clienttest.NewBroker(t, clienttest.Step{Reply: `{"success":false,"error":"internal","detail":"boom"}`})
	dead := clienttest.DeadAddr(t)
	c, _ := newTestClient(t, Options{Servers: []string{a.Addr, b.Addr, dead}, ConnectTimeout: 200 * time.Millisecond})
	all, err := c.StatusAll(ctxTimeout(t, 10*time.Second))
	if err != nil || len(all) != 3 {
		t.Fatalf("StatusAll = %d, %v", len(all), err)
	}
	st := all[0]
	if st.Err != nil || st.Server != a.Addr || st.Status.Role != "Leader" || st.Status.Term != 7 || st.Status.LastIndex != 13 || st.Status.LogSyncs != 5 || st.Status.LogEntries != 40 {
		t.Errorf("node 0 = %+v", st)
	}
	var se *ServerError
	if !errors.As(all[1].Err, &se) || se.Code != "internal" {
		t.Errorf("node 1 err = %v; want internal", all[1].Err)
	}
	if !errors.Is(all[2].Err, ErrUnreachable) {
		t.Errorf("node 2 err = %v; want ErrUnreachable", all[2].Err)
	}
	if r := a.Requests(); len(r) != 1 || r[0].Req.Type != "status" || r[0].Req.HasSession {
		t.Errorf("status request %+v", r)
	}
}

func TestBackoffBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed, 1))
	tests := []struct {
		base, limit time.Duration
		n           int
		lo, hi      time.Duration
	}{
		{10 * time.Millisecond, time.Second, 0, 5 * time.Millisecond, 10 * time.Millisecond},
		{10 * time.Millisecond, time.Second, 3, 40 * time.Millisecond, 80 * time.Millisecond},
		{10 * time.Millisecond, time.Second, 7, 500 * time.Millisecond, time.Second},
		{10 * time.Millisecond, time.Second, 70, 500 * time.Millisecond, time.Second}, // no overflow
		{time.Nanosecond, time.Nanosecond, 0, 0, time.Nanosecond},
	}
	for _, tt := range tests {
		for range 100 {
			if d := backoff(tt.base, tt.limit, tt.n, rng.Int64N); d < tt.lo || d > tt.hi {
				t.Fatalf("backoff(%v, %v, %d) = %v, want in [%v, %v] (seed %d)", tt.base, tt.limit, tt.n, d, tt.lo, tt.hi, testSeed)
			}
		}
	}
}

func TestNewNeedsServers(t *testing.T) {
	for _, servers := range [][]string{nil, {""}} {
		if _, err := New(Options{Servers: servers}); !errors.Is(err, ErrNoServers) {
			t.Errorf("New(%q) err = %v; want ErrNoServers", servers, err)
		}
	}
	c1, _ := New(Options{Servers: []string{"x:1"}})
	c2, _ := New(Options{Servers: []string{"x:1"}})
	if c1.ClientID() == c2.ClientID() || c1.ClientID() == "" {
		t.Errorf("client ids %q %q: want distinct random ids", c1.ClientID(), c2.ClientID())
	}
}

// TestEveryRequestNamesItsClient: reads and status carry the client_id too,
// so a broker answers this client in raftmq's dialect (error codes) and
// never with the course's bare {"success":false}.
func TestEveryRequestNamesItsClient(t *testing.T) {
	b := clienttest.NewBroker(t,
		clienttest.Step{Reply: `{"success":true,"topics":[]}`},
		clienttest.Step{Reply: `{"role":"Leader","term":1}`},
		clienttest.Step{Reply: `{"success":true}`},
	)
	c, _ := newTestClient(t, Options{Servers: []string{b.Addr}})
	ctx := ctxTimeout(t, 10*time.Second)
	if _, err := c.ListTopics(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx, b.Addr); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	got := b.Requests()
	if len(got) != 3 {
		t.Fatalf("broker saw %d requests, want 3", len(got))
	}
	for i, s := range got {
		if s.Req.ClientID != c.ClientID() || s.Req.Dialect != wire.DialectRaftmq {
			t.Errorf("request %d (%s %s): client_id %q dialect %v, want %q raftmq", i, s.Req.Type, s.Req.Method, s.Req.ClientID, s.Req.Dialect, c.ClientID())
		}
	}
	if got[0].Req.HasSession || !got[2].Req.HasSession {
		t.Errorf("sessions: read %v, create %v; want only the create to carry a seq", got[0].Req.HasSession, got[2].Req.HasSession)
	}
}
