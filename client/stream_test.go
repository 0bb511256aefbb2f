package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/ipc"
)

// streamServer serves GET /v1/events with serve, one call per request
// (numbered from 0), on a fresh endpoint; it returns the client.
func streamServer(t *testing.T, serve func(n int, w http.ResponseWriter, r *http.Request)) *Client {
	t.Helper()
	dir := shortTempDir(t)
	ln, err := ipc.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	calls := 0
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := calls
		calls++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-ndjson")
		serve(n, w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return New(ipc.Path(dir))
}

func writeLine(w http.ResponseWriter, s string) {
	fmt.Fprintln(w, s)
	w.(http.Flusher).Flush()
}

// Heartbeat lines are not items: the caller never sees them.
func TestStreamSkipsHeartbeats(t *testing.T) {
	cl := streamServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Corral-Heartbeat-Ms", "15000")
		writeLine(w, `{"seq":1,"time":"2026-01-02T03:04:05Z","kind":"state","message":"a"}`)
		writeLine(w, `{"heartbeat":true,"time":"2026-01-02T03:04:06Z"}`)
		writeLine(w, `{"seq":2,"time":"2026-01-02T03:04:07Z","kind":"state","message":"b"}`)
	})
	var got []uint64
	err := cl.Events(context.Background(), 0, true, func(e Event) error {
		got = append(got, e.Seq)
		return nil
	})
	if err != nil || fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("events %v, %v; want [1 2] and no error", got, err)
	}
}

// A follow whose heartbeats stop is taken as dead, with an error that says
// so, instead of waiting forever on a connection nothing comes through.
func TestStreamWithoutHeartbeatsIsDead(t *testing.T) {
	defer func(s time.Duration) { heartbeatSlack = s }(heartbeatSlack)
	heartbeatSlack = 100 * time.Millisecond
	cl := streamServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Corral-Heartbeat-Ms", "20")
		writeLine(w, `{"seq":1,"time":"2026-01-02T03:04:05Z","kind":"state","message":"a"}`)
		<-r.Context().Done() // silent: a hung daemon, a stalled connection
	})
	done := make(chan error, 1)
	go func() { done <- cl.Events(context.Background(), 0, true, func(Event) error { return nil }) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotAnswering) {
			t.Fatalf("a silent follow ended with %v; want ErrNotAnswering", err)
		}
		t.Log(err)
	case <-time.After(time.Minute):
		t.Fatal("a follow without heartbeats has not ended after a minute")
	}
}

// With Reconnect a follow that loses its connection resumes with after=
// the last item it gave; the caller's error ends it at once.
func TestStreamReconnectsAfterTheLastItem(t *testing.T) {
	queries := make(chan url.Values, 4)
	cl := streamServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		queries <- r.URL.Query()
		w.Header().Set("Corral-Heartbeat-Ms", "15000")
		w.Header().Set("Corral-Epoch", "e1")
		switch n {
		case 0:
			writeLine(w, `{"seq":7,"time":"2026-01-02T03:04:05Z","kind":"state","message":"a"}`)
			writeLine(w, `{"seq":8,"time":"2026-01-02T03:04:05Z","kind":"state","message":"b"}`)
			// The daemon goes away: the answer ends.
		default:
			writeLine(w, `{"seq":9,"time":"2026-01-02T03:04:05Z","kind":"state","message":"c"}`)
			<-r.Context().Done()
		}
	})
	var got []uint64
	stop := errors.New("enough")
	err := cl.EventsWith(context.Background(), StreamOptions{N: 5, Follow: true, Reconnect: true}, func(e Event) error {
		got = append(got, e.Seq)
		if e.Seq == 9 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || fmt.Sprint(got) != "[7 8 9]" {
		t.Fatalf("events %v, %v; want [7 8 9] and the caller's error", got, err)
	}
	first, second := <-queries, <-queries
	if first.Get("n") != "5" || first.Has("after") || first.Get("follow") != "1" {
		t.Errorf("first request %v; want n=5&follow=1", first)
	}
	if second.Get("after") != "8" || second.Get("epoch") != "e1" || second.Has("n") || second.Get("follow") != "1" {
		t.Errorf("the reconnect asked %v; want after=8&epoch=e1&follow=1", second)
	}
}
