package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/ipc"
)

// A daemon that takes the request but never answers: the call returns at
// its bound, not before and not much after: Timeout bounds an ensure,
// dialing included, and the daemon is told less so its own answer would
// come first.
func TestTimeoutBoundsTheCall(t *testing.T) {
	dir := shortTempDir(t)
	ln, err := ipc.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := mute(t, ln)
	cl := New(ipc.Path(dir))

	const bound = 300 * time.Millisecond
	began := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := cl.Ensure(context.Background(), "web", bound)
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatalf("ensure with a %v timeout has not returned after a minute", bound)
	}
	if took := time.Since(began); took < bound {
		t.Fatalf("ensure returned after %v, before its %v bound: %v", took, bound, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ensure: %v; want a deadline error", err)
	}
	prefix := "client: POST /v1/services/web/ensure: the daemon (pid " + strconv.Itoa(os.Getpid()) + ") on " + ipc.Path(dir) + " did not answer within "
	if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.HasSuffix(msg, ": it may be stopped or overloaded: context deadline exceeded") {
		t.Fatalf("message %q; want %q…: it may be stopped or overloaded: context deadline exceeded", msg, prefix)
	}
	// The request reached the daemon with less than the bound to wait.
	req := <-lines
	u, err := url.Parse(strings.Fields(req)[1])
	if err != nil {
		t.Fatal(err)
	}
	told, err := time.ParseDuration(u.Query().Get("timeout"))
	if err != nil || told <= 0 || told >= bound {
		t.Fatalf("request %q: the daemon was told timeout %v (%v); want less than %v", req, told, err, bound)
	}

	// A caller's own deadline: the call ends once it has passed.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	go func() {
		_, err := cl.Daemon(ctx)
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("a call whose context ended has not returned after a minute")
	}
	if ctx.Err() == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the call returned %v before its context's deadline (ctx: %v)", err, ctx.Err())
	}
}

// A call with no deadline, to a daemon that is slow to answer it but
// answers the liveness check, is not cut short.
func TestLivenessLetsASlowAnswerThrough(t *testing.T) {
	defer func(e, to time.Duration) { livenessEvery, livenessTimeout = e, to }(livenessEvery, livenessTimeout)
	livenessEvery, livenessTimeout = 50*time.Millisecond, 5*time.Second
	dir := shortTempDir(t)
	ln, err := ipc.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	var probes atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/daemon":
			probes.Add(1)
			io.WriteString(w, `{"pid":1}`)
		case "/v1/shutdown":
			time.Sleep(time.Second)
			io.WriteString(w, `{"stopped":["a"],"survivors":[]}`)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	res, err := New(ipc.Path(dir)).Shutdown(context.Background())
	if err != nil || len(res.Stopped) != 1 {
		t.Fatalf("shutdown: %+v, %v", res, err)
	}
	if probes.Load() == 0 {
		t.Fatal("no liveness check was made while the call waited")
	}
}

// Idle kept-alive connections are closed by the client: the server sees
// its connection close, with no idle timeout of its own.
func TestIdleConnectionsAreClosed(t *testing.T) {
	dir := shortTempDir(t)
	ln, err := ipc.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	var once atomic.Bool
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"pid":1}`) }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed && once.CompareAndSwap(false, true) {
				close(closed)
			}
		},
	}
	go srv.Serve(ln)
	defer srv.Close()
	cl := NewWithOptions(ipc.Path(dir), Options{IdleTimeout: 200 * time.Millisecond})
	if _, err := cl.Daemon(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("the idle connection is still open after a minute")
	}
}

// No daemon: the message names the state directory (given, as a pipe's
// name on Windows does not say it) and how to start one.
func TestNoDaemonSaysHowToStartOne(t *testing.T) {
	dir := shortTempDir(t)
	sock := ipc.Path(dir)
	_, err := NewWithOptions(sock, Options{StateDir: dir}).Daemon(context.Background())
	want := "client: no corral daemon is running for " + dir + " (no socket " + sock + "): start one with: corral up"
	if !errors.Is(err, ErrNoDaemon) || err.Error() != want {
		t.Fatalf("%v\nwant: %s", err, want)
	}
}
