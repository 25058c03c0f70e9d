package snapshot

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// leaderAndFollower returns a leader store holding one snapshot of body and
// an empty follower store.
func leaderAndFollower(t *testing.T, body []byte) (*Store, Meta, *Store) {
	t.Helper()
	leader := openStore(t, t.TempDir(), 2)
	m := mustCreate(t, leader, 5000, 4, body)
	return leader, m, openStore(t, t.TempDir(), 2)
}

// stream sends the body of m from off to the end in chunks of chunkBytes.
func stream(t *testing.T, leader *Store, m Meta, r *Receiver, off int64, chunkBytes int) {
	t.Helper()
	for {
		chunk, err := leader.ReadChunk(m, off, chunkBytes)
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("ReadChunk(offset %d): %v", off, err)
		}
		if err := r.Write(off, chunk); err != nil {
			t.Fatalf("Write(offset %d, %d bytes): %v", off, len(chunk), err)
		}
		off += int64(len(chunk))
	}
}

func TestReceiveRoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		bodyBytes  int
		chunkBytes int
	}{
		{"empty body", 0, 4096},
		{"one chunk", 1000, 4096},
		{"exact chunks", 4 * 4096, 4096},
		{"ragged last chunk", 4*4096 + 17, 4096},
		{"tiny chunks", 999, 7},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := randomBody(t, uint64(200+i), tt.bodyBytes)
			leader, m, follower := leaderAndFollower(t, body)
			r, err := follower.NewReceiver(m)
			if err != nil {
				t.Fatal(err)
			}
			stream(t, leader, m, r, 0, tt.chunkBytes)
			path, err := r.Finish()
			if err != nil {
				t.Fatalf("Finish() = %v", err)
			}
			if path != follower.Path(m) {
				t.Errorf("Finish() path = %s, want %s", path, follower.Path(m))
			}
			if err := follower.Verify(m.Name()); err != nil {
				t.Errorf("Verify(received) = %v", err)
			}
			if got := readAll(t, follower, m); !bytes.Equal(got, body) {
				t.Errorf("received body differs from the sent one")
			}
			if latest, err := follower.Latest(); err != nil || !latest.Same(m) {
				t.Errorf("follower Latest() = %+v, %v", latest, err)
			}
			assertNoTempFiles(t, follower.Dir())
			if err := r.Write(0, nil); !errors.Is(err, ErrChunk) {
				t.Errorf("Write after Finish = %v, want ErrChunk", err)
			}
		})
	}
}

func TestReceiveOrderAndResume(t *testing.T) {
	const chunk = 4096
	body := randomBody(t, 300, 10*chunk+5)
	leader, m, follower := leaderAndFollower(t, body)
	r, err := follower.NewReceiver(m)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		offset  int64
		n       int // bytes of body from offset
		wantErr error
		wantMsg string
		wantOff int64 // Offset() afterwards
	}{
		{"first chunk", 0, chunk, nil, "", chunk},
		{"gap rejected", 2 * chunk, chunk, ErrChunk, "leaves a gap; resume from offset 4096", chunk},
		{"exact duplicate ignored", 0, chunk, nil, "", chunk},
		{"overlapping retransmission appends the new part", chunk / 2, chunk, nil, "", chunk + chunk/2},
		{"next in order", chunk + chunk/2, chunk, nil, "", 2*chunk + chunk/2},
		{"negative offset", -1, 1, ErrChunk, "negative offset", 2*chunk + chunk/2},
		{"past the declared size", 2*chunk + chunk/2, len(body), ErrChunk, "runs past the declared size", 2*chunk + chunk/2},
	}
	for _, st := range steps {
		var data []byte
		if st.offset >= 0 {
			data = make([]byte, st.n)
			copy(data, body[st.offset:])
		}
		err := r.Write(st.offset, data)
		if st.wantErr == nil && err != nil || st.wantErr != nil && (!errors.Is(err, st.wantErr) || !strings.Contains(err.Error(), st.wantMsg)) {
			t.Errorf("%s: Write(%d, %d bytes) = %v, want %v %q", st.name, st.offset, len(data), err, st.wantErr, st.wantMsg)
		}
		if r.Offset() != st.wantOff {
			t.Errorf("%s: Offset() = %d, want %d", st.name, r.Offset(), st.wantOff)
		}
	}

	if _, err := r.Finish(); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "resume from offset 10240") {
		t.Errorf("early Finish() = %v, want ErrTruncated naming the resume offset", err)
	}
	// The leader reconnects and asks again: the same receive resumes.
	again, err := follower.NewReceiver(m)
	if err != nil || again != r {
		t.Fatalf("NewReceiver(same meta) = %p, %v; want the receive in progress %p", again, err, r)
	}
	stream(t, leader, m, again, again.Offset(), chunk)
	if _, err := again.Finish(); err != nil {
		t.Fatalf("Finish() after resume = %v", err)
	}
	if got := readAll(t, follower, m); !bytes.Equal(got, body) {
		t.Errorf("resumed body differs from the sent one")
	}
}

func TestReceiveDamagedStream(t *testing.T) {
	body := randomBody(t, 400, 3*4096)
	leader, m, follower := leaderAndFollower(t, body)
	r, err := follower.NewReceiver(m)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(body)
	damaged[5000] ^= 1
	if err := r.Write(0, damaged); err != nil {
		t.Fatal(err)
	}
	_, err = r.Finish()
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "from offset 0") {
		t.Fatalf("Finish(damaged) = %v, want ErrChecksum telling to start again", err)
	}
	if _, err := follower.Latest(); !errors.Is(err, ErrNotFound) {
		t.Errorf("a damaged receive became visible: Latest() = %v", err)
	}
	assertNoTempFiles(t, follower.Dir())
	// A fresh receive of the same snapshot then succeeds.
	r, err = follower.NewReceiver(m)
	if err != nil {
		t.Fatal(err)
	}
	stream(t, leader, m, r, 0, 4096)
	if _, err := r.Finish(); err != nil {
		t.Fatalf("Finish() after restart = %v", err)
	}
}

func TestReceiveSupersededAndAborted(t *testing.T) {
	body := randomBody(t, 500, 8192)
	_, m, follower := leaderAndFollower(t, body)
	r1, err := follower.NewReceiver(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.Write(0, body[:100]); err != nil {
		t.Fatal(err)
	}
	newer := m
	newer.Index, newer.Term = m.Index+100, m.Term+1
	r2, err := follower.NewReceiver(newer)
	if err != nil {
		t.Fatal(err)
	}
	if r2 == r1 || r2.Offset() != 0 {
		t.Fatalf("NewReceiver(other meta) returned the old receive (offset %d)", r2.Offset())
	}
	if err := r1.Write(100, body[100:200]); !errors.Is(err, ErrChunk) {
		t.Errorf("Write to a superseded receive = %v, want ErrChunk", err)
	}
	r2.Abort()
	r2.Abort() // idempotent
	if ents, _ := os.ReadDir(follower.Dir()); len(ents) != 0 {
		t.Errorf("%d files left after Abort", len(ents))
	}
	wrong := m
	wrong.ClusterID = "elsewhere"
	if _, err := follower.NewReceiver(wrong); !errors.Is(err, ErrClusterMismatch) || !strings.Contains(err.Error(), `"elsewhere"`) {
		t.Errorf("NewReceiver(other cluster) = %v, want ErrClusterMismatch", err)
	}
	bad := m
	bad.Size = -1
	if _, err := follower.NewReceiver(bad); !errors.Is(err, ErrBadHeader) {
		t.Errorf("NewReceiver(size -1) = %v, want ErrBadHeader", err)
	}
}

func TestReadChunkBounds(t *testing.T) {
	body := randomBody(t, 600, 1000)
	leader, m, _ := leaderAndFollower(t, body)
	tests := []struct {
		name     string
		meta     Meta
		offset   int64
		maxBytes int
		want     []byte
		wantErr  error
	}{
		{"start", m, 0, 10, body[:10], nil},
		{"clipped at end", m, 990, 100, body[990:], nil},
		{"at end", m, 1000, 10, nil, io.EOF},
		{"past end", m, 1001, 10, nil, ErrChunk},
		{"negative", m, -1, 10, nil, ErrChunk},
		{"zero max", m, 0, 0, nil, ErrChunk},
		{"max too big", m, 0, MaxChunkBytes + 1, nil, ErrChunk},
		{"other snapshot same name", func() Meta { o := m; o.CRC++; return o }(), 0, 10, nil, ErrNotFound},
		{"never taken", Meta{ClusterID: testCluster, Index: 1, Term: 1}, 0, 10, nil, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := leader.ReadChunk(tt.meta, tt.offset, tt.maxBytes)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("ReadChunk() error = %v, want %v", err, tt.wantErr)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("ReadChunk() = %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
	// Deleted by keep-N while a follower streams it.
	mustCreate(t, leader, m.Index+1, m.Term, nil)
	mustCreate(t, leader, m.Index+2, m.Term, nil)
	if _, err := leader.ReadChunk(m, 0, 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadChunk(pruned) = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(leader.Dir(), m.Name())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the oldest snapshot was not pruned: %v", err)
	}
}
