package ipc

import (
	"context"
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

// The control endpoint carries HTTP, and a second daemon for the same state
// directory cannot take it over.
func TestEndpointRoundTripAndExclusive(t *testing.T) {
	dir, err := os.MkdirTemp("", "corral-ipc-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "corral:"+r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	hc := &http.Client{Transport: &http.Transport{DialContext: Dialer(Path(dir))}, Timeout: 10 * time.Second}
	for i := 0; i < 3; i++ { // several connections: each needs a new instance
		resp, err := hc.Get("http://corral/v1/daemon")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "corral:/v1/daemon" {
			t.Fatalf("answer %q", b)
		}
		hc.CloseIdleConnections()
	}
	if second, err := Listen(dir); err == nil {
		second.Close()
		t.Fatal("a second listener took the same state directory's endpoint")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, Path(dir+"-nobody")); err == nil {
		t.Fatal("dialing an endpoint nobody listens on succeeded")
	}
}

// Closing the endpoint right after serving starts ends the server: a Close
// that lands before the listener waits for a client must not be lost (the
// server's Close waits for Accept to return).
func TestCloseRightAfterServe(t *testing.T) {
	dir, err := os.MkdirTemp("", "corral-ipc-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for i := 0; i < 200; i++ {
		ln, err := Listen(dir)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		srv := &http.Server{Handler: http.NotFoundHandler()}
		served := make(chan struct{})
		go func() { srv.Serve(ln); close(served) }()
		closed := make(chan struct{})
		go func() { srv.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: closing the endpoint hangs", i)
		}
		<-served
	}
}
