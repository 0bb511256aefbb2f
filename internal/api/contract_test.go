package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/api"
	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/daemon"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/logs"
	"github.com/corral-sh/corral/internal/reclaim"
	"github.com/corral-sh/corral/internal/service"
	"github.com/corral-sh/corral/internal/supervisor"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// The client's types are the public wire contract; the daemon marshals its
// own. Every key the daemon sends must be known to the client, and the
// client must not expect keys the daemon never sends.
func TestWireContract(t *testing.T) {
	now := time.Date(2026, 11, 27, 1, 2, 3, 0, time.UTC)
	proc := proctree.Process{PID: 1, PPID: 2, PGID: 3, Start: now, Cmdline: []string{"a"}, RSS: 4, State: "S", StartTicks: 5, CPUSeconds: 1.5}
	gpuMem := int64(6)
	report := &proctree.StopReport{Signal: "SIGTERM", Signalled: 1, Exited: 1, Killed: 1, Duration: time.Second, Survivors: []proctree.Process{proc}}
	view := supervisor.View{
		Status: service.Status{Name: "s", State: service.Ready, Reason: "r", Code: service.CodeNotReady, Since: now, Instance: "i",
			PID: 1, Leader: 2, MainFrom: "f", Mechanism: "m",
			Profile: "p", Args: []string{"--a"}, EnvKeys: []string{"K"}, StartedAt: now, Restarts: 1, Starts: 2, NextStart: now,
			LastExit:     &service.ExitInfo{At: now, Code: 1, Signaled: true, Description: "d", Requested: true},
			ExternalPIDs: []int{7}, LastStop: report,
			Limits: &service.LimitsView{Processes: 1, Memory: 2, ForkRate: 3, GPUMemory: 4, OnLimit: "stop"}, Frozen: true, KernelLimit: true},
		Members: []supervisor.Member{{Process: proc, GPUMemory: &gpuMem}}, MemberCount: 1, RSS: 4,
		CPUSeconds: 1.5, GPUMemory: &gpuMem, Profiles: []string{"guarded"},
		LastStopGPU: &supervisor.GPURelease{Held: 6, Holders: 1, Left: []int{9}},
	}
	for _, tc := range []struct {
		name   string
		server any
		client any
	}{
		{"service", view, &client.Service{}},
		{"daemon", daemon.Info{PID: 1, Version: "v", Config: "c", StateDir: "s", Started: now, Mechanism: "m", Containment: "auto", MechanismNote: "n", ConfigSHA256: "ab", ConfigRead: now, ExitWith: 7, Dashboard: "127.0.0.1:1"}, &client.Daemon{}},
		{"event", journal.Event{Seq: 1, Time: now, Kind: journal.Spawn, Service: "s", Instance: "i", PID: 1, Message: "m", Fields: map[string]string{"k": "v"},
			Cgroup: "/c", Start: 9, Boot: "b", Cmdline: []string{"x"}}, &client.Event{}},
		{"log line", logs.Line{Seq: 1, Time: now, Stream: "stdout", Text: "t"}, &client.LogLine{}},
		{"reload", supervisor.ReloadResult{Added: []string{"a"}, Removed: []string{"b"}, Changed: []string{"c"}, Unchanged: []string{"d"}}, &client.ReloadResult{}},
		{"reap", reclaim.Report{Instance: "i", Service: "s", Cgroup: "/c", Found: []proctree.Process{proc}, Killed: 1, Reused: 2, Error: "e"}, &client.ReapReport{}},
		{"shutdown", supervisor.ShutdownResult{Stopped: []string{"a"}, Errors: []string{"e"}, Survivors: []supervisor.Survivor{{Service: "s", Instance: "i", PID: 1, Cmdline: []string{"c"}}}}, &client.ShutdownResult{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent, err := json.Marshal(tc.server)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(sent))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tc.client); err != nil {
				t.Fatalf("the client cannot read what the daemon sends: %v\n%s", err, sent)
			}
			back, _ := json.Marshal(tc.client)
			var a, b any
			json.Unmarshal(sent, &a)
			json.Unmarshal(back, &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("round trip differs:\n daemon %s\n client %s", sent, back)
			}
		})
	}
}

// Every code the daemon sends has the client's constant, spelled the same.
func TestCodesMatchTheClient(t *testing.T) {
	for _, c := range []struct {
		server service.Code
		client string
	}{
		{service.CodeBadRequest, client.CodeBadRequest},
		{service.CodeShuttingDown, client.CodeShuttingDown},
		{service.CodeNotReady, client.CodeNotReady},
		{service.CodeUnhealthy, client.CodeUnhealthy},
		{service.CodeExited, client.CodeExited},
		{service.CodeStartLimit, client.CodeStartLimit},
		{service.CodePortInUse, client.CodePortInUse},
		{service.CodeSpawnFailed, client.CodeSpawnFailed},
		{service.CodeStopIncomplete, client.CodeStopIncomplete},
		{service.CodeLeftover, client.CodeLeftover},
		{service.CodeProfileMismatch, client.CodeProfileMismatch},
		{service.CodeExternal, client.CodeExternal},
		{service.CodeStopped, client.CodeStopped},
		{service.CodeFrozen, client.CodeFrozen},
		{service.CodeRunaway, client.CodeRunaway},
		{service.CodeTimeout, client.CodeTimeout},
	} {
		if string(c.server) != c.client {
			t.Errorf("service code %q is %q in the client", c.server, c.client)
		}
	}
}

// daemon is the Daemon the routes need, around a real supervisor.
type testDaemon struct{ sup *supervisor.Supervisor }

func (d testDaemon) Supervisor() *supervisor.Supervisor { return d.sup }
func (d testDaemon) Info() any                          { return daemon.Info{PID: os.Getpid()} }
func (d testDaemon) Reload(ctx context.Context) (supervisor.ReloadResult, error) {
	_, err := config.Parse("corral.toml", "[services.a]\ncomand = [\"x\"]\n")
	return supervisor.ReloadResult{}, fmt.Errorf("reload rejected, nothing changed: %w", err)
}
func (d testDaemon) Shutdown(ctx context.Context) supervisor.ShutdownResult {
	return d.sup.Shutdown(ctx)
}
func (d testDaemon) Reap(ctx context.Context, dryRun bool) ([]reclaim.Report, error) {
	return nil, nil
}

// The error answers of the real handler, over the daemon's endpoint: the
// body is {error, code, service} and nothing else, the status follows the
// code, and the client reads all of it.
func TestErrorContract(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The services are this test binary running the sleep fixture.
	cfg, err := config.Parse("corral.toml", fmt.Sprintf(`
[services.a]
command = ['%[1]s', "sleep"]
env = { CORRAL_TESTPROC = "sleep", GORACE = "atexit_sleep_ms=0" }
autostart = false
profiles = { other = ["x"] }
stop = { grace = "2s" }

[services.slow]
command = ['%[1]s', "sleep"]
env = { CORRAL_TESTPROC = "sleep", GORACE = "atexit_sleep_ms=0" }
autostart = false
ready = { log = "never printed", timeout = "1m" }
stop = { grace = "2s" }
`, exe))
	if err != nil {
		t.Fatal(err)
	}
	sup, err := supervisor.New(cfg, supervisor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ln, err := ipc.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.Handler(testDaemon{sup}, slog.New(slog.DiscardHandler))}
	go srv.Serve(ln)
	t.Cleanup(func() {
		if res := sup.Shutdown(context.Background()); len(res.Survivors) > 0 || len(res.Errors) > 0 {
			t.Errorf("shutdown: %+v", res)
		}
		srv.Close()
	})
	path := ipc.Path(dir)
	hc := &http.Client{Transport: &http.Transport{DialContext: ipc.Dialer(path)}}
	cl := client.New(path)

	// expect checks the raw answer of method route, then what the client
	// makes of the same request (call, if any).
	expect := func(t *testing.T, method, route string, status int, code, svc, msg string, call func() error) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://corral"+route, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Error   string `json:"error"`
			Code    string `json:"code"`
			Service string `json:"service"`
		}
		dec := json.NewDecoder(resp.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			t.Fatalf("%s %s: the body is not {error, code, service}: %v", method, route, err)
		}
		if resp.StatusCode != status || body.Code != code || body.Service != svc || !strings.Contains(body.Error, msg) {
			t.Fatalf("%s %s answered %d %+v, want %d code %q service %q and an error with %q", method, route, resp.StatusCode, body, status, code, svc, msg)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: content type %q", method, route, ct)
		}
		if call == nil {
			return
		}
		err = call()
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != status || ce.Code != code || ce.Service != svc || ce.Message != body.Error || client.CodeOf(err) != code {
			t.Fatalf("the client read %#v (%v), want status %d code %q service %q message %q", ce, err, status, code, svc, body.Error)
		}
	}
	ctx := context.Background()

	t.Run("unknown service", func(t *testing.T) {
		expect(t, "GET", "/v1/services/nope", 404, client.CodeUnknownService, "nope", `unknown service "nope"`,
			func() error { _, err := cl.Inspect(ctx, "nope"); return err })
		expect(t, "POST", "/v1/services/nope/ensure", 404, client.CodeUnknownService, "nope", `unknown service "nope"`,
			func() error { _, err := cl.Ensure(ctx, "nope", 0); return err })
	})
	t.Run("unknown profile", func(t *testing.T) {
		expect(t, "POST", "/v1/services/a/start?profile=nosuch", 400, client.CodeBadRequest, "a", `no profile "nosuch"`,
			func() error { _, err := cl.Start(ctx, "a", "nosuch", false); return err })
		if s, _ := cl.Inspect(ctx, "a"); s.State != "stopped" {
			t.Fatalf("a refused start changed the service: %+v", s)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		expect(t, "POST", "/v1/services/a/ensure?timeout=soon", 400, client.CodeBadRequest, "a", `timeout "soon"`,
			nil)
		expect(t, "GET", "/v1/events?heartbeat=1ns", 400, client.CodeBadRequest, "", `heartbeat "1ns"`,
			func() error { return cl.EventsWith(ctx, client.StreamOptions{Heartbeat: time.Nanosecond}, nil) })
		expect(t, "GET", "/v1/events?after=-1", 400, client.CodeBadRequest, "", `after="-1"`, nil)
	})
	// net/http's own 404 and 405 are JSON too.
	t.Run("no route", func(t *testing.T) {
		expect(t, "POST", "/v1/services/a/frobnicate", 404, client.CodeNotFound, "", "no route POST /v1/services/a/frobnicate",
			nil)
		expect(t, "GET", "/v1/nope", 404, client.CodeNotFound, "", "no route GET /v1/nope", nil)
		expect(t, "GET", "/v1//daemon", 404, client.CodeNotFound, "", "not in its clean form (/v1/daemon)", nil)
		expect(t, "DELETE", "/v1/daemon", 405, client.CodeMethodNotAllowed, "", "method DELETE is not allowed on /v1/daemon (allowed: GET, HEAD)", nil)
	})
	t.Run("bad config", func(t *testing.T) {
		expect(t, "POST", "/v1/reload", 400, client.CodeBadConfig, "", "unknown key",
			func() error { _, err := cl.Reload(ctx); return err })
	})
	t.Run("profile mismatch", func(t *testing.T) {
		first, err := cl.Start(ctx, "a", "", false)
		if err != nil {
			t.Fatal(err)
		}
		expect(t, "POST", "/v1/services/a/start?profile=other", 409, client.CodeProfileMismatch, "a", `not "other"`,
			func() error { _, err := cl.Start(ctx, "a", "other", false); return err })
		expect(t, "POST", "/v1/services/a/ensure?profile=other", 409, client.CodeProfileMismatch, "a", `not "other"`,
			func() error { _, err := cl.EnsureWith(ctx, "a", client.StartOptions{Profile: "other"}); return err })
		if s, _ := cl.Inspect(ctx, "a"); s.Instance != first.Instance {
			t.Fatalf("a refused start touched the instance: %+v", s)
		}
		// Asked for, the other profile replaces the instance.
		s, err := cl.EnsureWith(ctx, "a", client.StartOptions{Profile: "other", RestartIfDifferent: true, Timeout: 30 * time.Second})
		if err != nil || s.Profile != "other" || s.Instance == first.Instance || s.State != "ready" {
			t.Fatalf("ensure with restart_if_different: %+v, %v", s, err)
		}
		s, err = cl.StartWith(ctx, "a", client.StartOptions{RestartIfDifferent: true})
		if err != nil || s.Profile != "other" {
			t.Fatalf("a start without a profile must keep the running one: %+v, %v", s, err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		expect(t, "POST", "/v1/services/slow/ensure?timeout=100ms", 504, client.CodeTimeout, "slow", "waiting for readiness: log line /never printed/",
			func() error { _, err := cl.Ensure(ctx, "slow", 100*time.Millisecond); return err })
	})
	t.Run("shutting down", func(t *testing.T) {
		sup.Shutdown(ctx)
		expect(t, "POST", "/v1/services/a/start", 503, client.CodeShuttingDown, "a", "shutting down",
			func() error { _, err := cl.Start(ctx, "a", "", false); return err })
	})
}

func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}
