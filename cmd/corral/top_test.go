package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/top"
)

// topFake is the daemon of corral top's tests: two services, every List
// said on listed, every action on acted.
type topFake struct {
	listed chan struct{}
	acted  chan string
}

func (f *topFake) List(context.Context, bool) ([]client.Service, error) {
	select {
	case f.listed <- struct{}{}:
	default: // nobody waits for this one
	}
	return []client.Service{
		{Name: "webui", State: "ready", Instance: "a", PID: 100, MemberCount: 1},
		{Name: "comfy", State: "ready", Instance: "b", PID: 200, MemberCount: 1},
	}, nil
}

func (f *topFake) act(verb, name string) (client.Service, error) {
	f.acted <- verb + " " + name
	return client.Service{Name: name, State: "ready"}, nil
}

func (f *topFake) Start(_ context.Context, name, _ string, _ bool) (client.Service, error) {
	return f.act("start", name)
}

func (f *topFake) Stop(_ context.Context, name string) (client.Service, error) {
	return f.act("stop", name)
}

func (f *topFake) Restart(_ context.Context, name, _ string, _ bool) (client.Service, error) {
	return f.act("restart", name)
}

// EventsWith follows as the daemon's stream does: until ctx ends.
func (f *topFake) EventsWith(ctx context.Context, o client.StreamOptions, fn func(client.Event) error) error {
	fn(client.Event{Seq: 1, Kind: "daemon", Message: "started"})
	if o.Follow {
		<-ctx.Done()
	}
	return nil
}

// lockedBuffer is the screen: Bubble Tea writes it from its renderer.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// The live view as the command runs it (Bubble Tea, the event stream),
// on a pipe instead of a terminal: down, r, y restarts the second
// service, through the Daemon interface, and q ends the command cleanly.
func TestTopRestartsTheSelectedService(t *testing.T) {
	d := &topFake{listed: make(chan struct{}), acted: make(chan string, 1)}
	in, keys := io.Pipe()
	defer keys.Close()
	screen := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runTop(context.Background(), d, io.Discard,
			&top.Terminal{In: in, Out: screen, Env: []string{"TERM=xterm-256color"}, Width: 100, Height: 30},
			topFlags{interval: 10 * time.Millisecond})
	}()
	// A reading is scheduled only once the one before it is in the model:
	// the second List means the first services are on screen.
	for range 2 {
		select {
		case <-d.listed:
		case err := <-done:
			t.Fatalf("top ended before reading twice: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("top did not read the services")
		}
	}
	if _, err := keys.Write([]byte("\x1b[Bry")); err != nil { // down, r, y
		t.Fatal(err)
	}
	select {
	case got := <-d.acted:
		if got != "restart comfy" {
			t.Errorf("the action sent is %q, want restart comfy", got)
		}
	case err := <-done:
		t.Fatalf("top ended before restarting: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no restart was sent")
	}
	if _, err := keys.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("q: top returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("q did not end top")
	}
	// What reached the screen is not checked: Bubble Tea draws at its own
	// frame rate, and q may come before a frame (internal/top's tests
	// read the View itself).
}

// A signal ends the live view as q does (the CLI's context ends).
func TestTopEndsWithItsContext(t *testing.T) {
	d := &topFake{listed: make(chan struct{}), acted: make(chan string, 1)}
	in, keys := io.Pipe()
	defer keys.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runTop(ctx, d, io.Discard, &top.Terminal{In: in, Out: io.Discard, Env: []string{"TERM=xterm-256color"}, Width: 80, Height: 24}, topFlags{interval: time.Second})
	}()
	select {
	case <-d.listed:
	case <-time.After(30 * time.Second):
		t.Fatal("top did not read the services")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("top ended by its context returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("top did not end with its context")
	}
}

// Without a terminal (t nil), top prints one snapshot; --json prints it
// as JSON with the CPU% it measured.
func TestTopSnapshotWithoutTerminal(t *testing.T) {
	d := &topFake{listed: make(chan struct{}), acted: make(chan string, 1)}
	var out bytes.Buffer
	if err := runTop(context.Background(), d, &out, nil, topFlags{interval: minTopInterval}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"corral top · 2 services, 2 running", "webui", "comfy", "EVENTS", "daemon  started"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the snapshot lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "q quit") || strings.Contains(out.String(), "\x1b[") {
		t.Errorf("a snapshot with keys or escape codes:\n%q", out.String())
	}
	out.Reset()
	if err := runTop(context.Background(), d, &out, nil, topFlags{interval: minTopInterval, json: true}); err != nil {
		t.Fatal(err)
	}
	var j struct {
		Services   []client.Service   `json:"services"`
		CPUPercent map[string]float64 `json:"cpu_percent"`
		Events     []client.Event     `json:"events"`
	}
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if len(j.Services) != 2 || len(j.Events) != 1 || j.CPUPercent == nil {
		t.Errorf("top --json: %s", out.String())
	}
}

func TestTopUsage(t *testing.T) {
	cfg := writeConfig(t, twoServices)
	out, errs, code := cli(t, "-c", cfg, "top", "--interval", "10ms")
	if code != exitUsage || out != "" {
		t.Errorf("--interval 10ms exited %d (want 2), stdout %q", code, out)
	}
	wantOutput(t, "--interval 10ms", errs, "corral: top --interval 10ms: must be 100ms or more\n")
	// No daemon: as for status, exit 4 with how to start one.
	out, errs, code = cli(t, "-c", cfg, "top", "--once")
	if code != exitNoDaemon || out != "" || !strings.Contains(errs, "start one with: corral") {
		t.Errorf("top --once without a daemon exited %d (want 4): stdout %q, stderr %q", code, out, errs)
	}
}
