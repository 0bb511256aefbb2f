package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/logs"
)

// serve answers on a free port of 127.0.0.1 with h, and returns the port.
func serve(t *testing.T, h http.HandlerFunc) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// presetReady returns the ready probe of a preset on port, with a short
// timeout for the test.
func presetReady(t *testing.T, preset string, port int, timeout time.Duration) config.Probe {
	f, err := config.Parse("c.toml", fmt.Sprintf("[services.s]\npreset = %q\nport = %d\ncommand = [\"x\"]\n", preset, port))
	if err != nil {
		t.Fatal(err)
	}
	p := f.Services["s"].Ready
	p.Timeout, p.Interval = timeout, 10*time.Millisecond
	return p
}

// The HTTP presets wait as their servers say they are ready: llama.cpp's
// llama-server answers /health with 503 {"status":"loading model"} until
// the model is loaded, vLLM's /health is 200 once the engine is up,
// ollama's / says "Ollama is running". The controls: a server still
// loading, or another program on ollama's port, is not ready.
func TestPresetsWaitAsTheirServersSay(t *testing.T) {
	var loaded atomic.Bool
	health := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		if !loaded.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`)
			return
		}
		fmt.Fprint(w, `{"status":"ok"}`)
	}
	for _, preset := range []string{"llamacpp", "vllm"} {
		loaded.Store(false)
		port := serve(t, health)
		err := WaitReady(context.Background(), presetReady(t, preset, port, 200*time.Millisecond), logs.NewSink(logs.Options{}), 0, Options{})
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("%s while loading: %v", preset, err)
		}
		time.AfterFunc(100*time.Millisecond, func() { loaded.Store(true) })
		if err := WaitReady(context.Background(), presetReady(t, preset, port, 10*time.Second), logs.NewSink(logs.Options{}), 0, Options{}); err != nil {
			t.Fatalf("%s once loaded: %v", preset, err)
		}
	}

	ollama := serve(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "Ollama is running") })
	if err := WaitReady(context.Background(), presetReady(t, "ollama", ollama, 10*time.Second), logs.NewSink(logs.Options{}), 0, Options{}); err != nil {
		t.Fatalf("ollama: %v", err)
	}
	other := serve(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>some other server</html>") })
	if err := WaitReady(context.Background(), presetReady(t, "ollama", other, 200*time.Millisecond), logs.NewSink(logs.Options{}), 0, Options{}); err == nil || !strings.Contains(err.Error(), "body does not match") {
		t.Fatalf("another server on ollama's port: %v", err)
	}
}

// ready = [ ... ]: nil once every probe passed; the first that fails is
// the answer, by its index.
func TestWaitReadyAll(t *testing.T) {
	var up atomic.Bool
	port := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	})
	f, err := config.Parse("c.toml", fmt.Sprintf("[services.s]\ncommand = [\"x\"]\nready = [{ http = \"http://127.0.0.1:%d/\", interval = \"10ms\" }, { log = \"accepting\", timeout = \"10s\" }]\n", port))
	if err != nil {
		t.Fatal(err)
	}
	ready := f.Services["s"].Ready
	sink := logs.NewSink(logs.Options{})
	done := make(chan error, 1)
	go func() { done <- WaitReady(context.Background(), ready, sink, 0, Options{}) }()
	fmt.Fprintln(sink.Writer("stdout"), "accepting connections")
	select {
	case err := <-done:
		t.Fatalf("ready with the HTTP probe failing: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	up.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Each probe has its own timeout.
	ready.All[0].Timeout = 50 * time.Millisecond
	up.Store(false)
	err = WaitReady(context.Background(), ready, logs.NewSink(logs.Options{}), 0, Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "ready[0]: not ready after 50ms: probe: GET http://127.0.0.1:") {
		t.Fatalf("the HTTP probe's own timeout: %v", err)
	}
}
