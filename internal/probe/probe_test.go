package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/logs"
	"github.com/corral-sh/corral/internal/testproc"
)

func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}

func TestHTTPBecomesReadyLate(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "loading", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer srv.Close()
	p := config.Probe{HTTP: srv.URL, Body: regexp.MustCompile(`"ok":true`), Timeout: 10 * time.Second, Interval: 10 * time.Millisecond}
	if err := WaitReady(context.Background(), p, logs.NewSink(logs.Options{}), 0, Options{}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() < 3 {
		t.Fatalf("ready after %d calls", calls.Load())
	}
	p.Body = regexp.MustCompile(`never`)
	p.Timeout = 100 * time.Millisecond
	err := WaitReady(context.Background(), p, logs.NewSink(logs.Options{}), 0, Options{})
	if err == nil || !strings.Contains(err.Error(), "body does not match") {
		t.Fatalf("body mismatch: %v", err)
	}
}

func TestTCPAndExec(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := TCP(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := TCP(context.Background(), addr); err == nil {
		t.Fatal("closed port accepted")
	}
	if err := Exec(context.Background(), []string{"/bin/true"}, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := Exec(context.Background(), []string{"/bin/sh", "-c", "echo broken; exit 3"}, Options{}); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("failing exec: %v", err)
	}
	// A probe that hangs (and leaves a child) is bounded and leaves nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := Exec(ctx, []string{"/bin/sh", "-c", "sleep 30 & sleep 30"}, Options{}); err == nil {
		t.Fatal("hanging probe passed")
	}
}

func TestLogLineSinceInstanceStart(t *testing.T) {
	sink := logs.NewSink(logs.Options{})
	w := sink.Writer("stdout")
	fmt.Fprintln(w, "Running on local URL: old instance")
	since := sink.Tail(1)[0].Seq
	p := config.Probe{Log: regexp.MustCompile(`Running on local URL`), Timeout: 5 * time.Second, Interval: 10 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- WaitReady(context.Background(), p, sink, since, Options{}) }()
	select {
	case err := <-done:
		t.Fatalf("ready from the previous instance's output: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	fmt.Fprintln(w, "Running on local URL:  http://127.0.0.1:7860")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
