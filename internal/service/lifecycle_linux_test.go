package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/restart"
	"github.com/corral-sh/corral/internal/testproc"
)

func fixture(name string, args ...string) *config.Service {
	cmd := testproc.Command(name, args...)
	return &config.Service{Name: name, Argv: cmd.Args, Env: cmd.Env[len(cmd.Env)-2:], Lifetime: config.LifetimeLeader, StdinNull: true,
		Ready:   config.Probe{Timeout: 10 * time.Second, Interval: 10 * time.Millisecond},
		Restart: restart.Policy{Mode: restart.OnFailure, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Burst: 50, Window: time.Minute},
		Stop:    config.Stop{Signal: syscall.SIGTERM, Grace: 2 * time.Second}}
}

// The owner goroutine never blocks on the work it hands out: while the
// preflight is stuck (here: inside the owner lookup of a port holder),
// Status answers from the snapshot and a stop is taken at once. The old
// loop ran the preflight itself, so both waited behind it.
func TestStatusAndStopNeverWaitForThePreflight(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := fixture("sleep")
	cfg.Ready = config.Probe{TCP: ln.Addr().String(), Timeout: time.Second, Interval: 10 * time.Millisecond}
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	s := New(cfg, Deps{OwnerOf: func(int) string {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return ""
	}})
	defer s.Close()
	go s.Start(context.Background(), "", false)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the preflight never looked up the port's holder")
	}
	done := make(chan Status, 1)
	go func() { done <- s.Status() }()
	select {
	case st := <-done:
		if st.State != Checking {
			t.Fatalf("state %s while the preflight runs", st.State)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Status waited for the preflight")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.Stop(ctx)
	if err != nil || st.State != Stopped {
		t.Fatalf("stop during the preflight: %v (%s)", err, st.State)
	}
}

// A readiness failure is answered with the probe's error, its target and
// timeout, under the not_ready code; "health" is not said of readiness.
func TestReadinessFailureCarriesTheProbesError(t *testing.T) {
	cfg := fixture("sleep")
	port := freePort(t)
	cfg.Ready = config.Probe{HTTP: fmt.Sprintf("http://127.0.0.1:%d/", port), Timeout: 300 * time.Millisecond, Interval: 20 * time.Millisecond}
	cfg.Restart.Mode = restart.Never
	h := newHarness(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := h.svc.Ensure(ctx)
	if CodeOf(err) != CodeNotReady || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "not ready after 300ms") {
		t.Fatalf("ensure: %v (code %q)", err, CodeOf(err))
	}
	st := h.svc.Status()
	if st.State != Failed || st.Code != CodeNotReady || !strings.Contains(st.Reason, "connection refused") {
		t.Fatalf("status %s %q %q", st.State, st.Code, st.Reason)
	}
	var named bool
	for _, e := range h.bus.Recent(0) {
		if e.Kind == journal.NotReady && strings.Contains(e.Message, "readiness probe failed") {
			named = true
		}
		if e.Kind == journal.Health {
			t.Fatalf("readiness filed as health: %s", e.Message)
		}
	}
	if !named {
		t.Fatal("no not-ready event in the journal")
	}
	if n := len(h.spawns()); n != 1 {
		t.Fatalf("policy never: %d spawns", n)
	}
}

// An ensure whose deadline passes says what the service is waiting for,
// and leaves the start going (the next ensure joins it).
func TestEnsureTimeoutSaysWhatItWaitsFor(t *testing.T) {
	port := freePort(t)
	cfg := webuiService(t, port, "--ready-after", "2s")
	h := newHarness(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := h.svc.Ensure(ctx)
	if CodeOf(err) != CodeTimeout || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "waiting for readiness") || !strings.Contains(err.Error(), fmt.Sprintf("http://127.0.0.1:%d/", port)) {
		t.Fatalf("ensure: %v", err)
	}
	st := h.ensure()
	if st.State != Ready || len(h.spawns()) != 1 {
		t.Fatalf("after the timeout: %s, %d spawns", st.State, len(h.spawns()))
	}
}

// A profile given to a running service is refused (it used to be ignored
// with success), or switches the instance when asked to.
func TestProfileOfARunningInstance(t *testing.T) {
	cfg := fixture("sleep")
	cfg.Profiles = map[string][]string{"guarded": {"--medvram"}, "cpu": {"--cpu"}}
	h := newHarness(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first, err := h.svc.StartWith(ctx, StartOptions{Profile: "guarded", Wait: true})
	if err != nil || first.Profile != "guarded" {
		t.Fatalf("start guarded: %v %+v", err, first)
	}
	if _, err := h.svc.StartWith(ctx, StartOptions{Profile: "cpu"}); CodeOf(err) != CodeProfileMismatch {
		t.Fatalf("start cpu on a guarded instance: %v", err)
	}
	if _, err := h.svc.EnsureWith(ctx, StartOptions{Profile: "cpu"}); CodeOf(err) != CodeProfileMismatch {
		t.Fatalf("ensure cpu on a guarded instance: %v", err)
	}
	if st, err := h.svc.EnsureWith(ctx, StartOptions{Profile: "guarded"}); err != nil || st.Instance != first.Instance {
		t.Fatalf("ensure guarded: %v, instance %s (was %s)", err, st.Instance, first.Instance)
	}
	st, err := h.svc.EnsureWith(ctx, StartOptions{Profile: "cpu", RestartIfDifferent: true})
	if err != nil || st.Profile != "cpu" || st.Instance == first.Instance {
		t.Fatalf("ensure cpu, restart if different: %v %+v", err, st)
	}
	if left := testproc.Carriers(first.Instance); len(left) > 0 {
		t.Fatalf("the guarded instance left %v", left)
	}
}

// A forking daemon (systemd's Type=forking): the launcher exits 0, the
// master it started writes a pidfile. The main process is that pid; its
// death ends the instance, the rest of the tree (its worker) is stopped
// and the policy restarts it. Negative control: the same program as
// lifetime = "leader" without pidfile is ended as soon as the launcher
// exits, with a hint that it daemonizes.
func TestPidfileFollowsAForkingDaemon(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "master.pid")
	cfg := fixture("forking", pidfile)
	cfg.PIDFile = pidfile
	h := newHarness(t, cfg)
	st := h.ensure()
	eventually(t, 10*time.Second, "the main process from the pidfile", func() bool {
		st = h.svc.Status()
		return st.PID != st.Leader && st.PID != 0
	})
	b, _ := os.ReadFile(pidfile)
	if fmt.Sprint(st.PID) != strings.TrimSpace(string(b)) || !strings.Contains(st.MainFrom, pidfile) {
		t.Fatalf("main %d (%s), pidfile says %s", st.PID, st.MainFrom, b)
	}
	if alive, _ := testproc.Alive(st.Leader); alive {
		t.Fatal("the launcher should have exited")
	}
	if got := members(t, h.svc); got != 2 {
		t.Fatalf("%d members, want master + worker", got)
	}
	first := st
	os.Remove(pidfile)
	syscall.Kill(first.PID, syscall.SIGKILL)
	eventually(t, 20*time.Second, "a new instance with its own master", func() bool {
		st = h.svc.Status()
		return st.Instance != first.Instance && st.State == Ready && st.PID != st.Leader && st.PID != 0
	})
	if left := testproc.Carriers(first.Instance); len(left) > 0 {
		t.Fatalf("the killed master's tree left %v (its worker)", left)
	}
	if st.Restarts != 1 || st.LastExit == nil || !strings.Contains(st.LastExit.Description, "main process pid") {
		t.Fatalf("restarts %d, last exit %+v", st.Restarts, st.LastExit)
	}

	// Negative control.
	cfg2 := fixture("forking", filepath.Join(dir, "other.pid"))
	cfg2.Name = "leader"
	cfg2.Restart.Mode = restart.Never
	h2 := newHarness(t, cfg2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h2.svc.Ensure(ctx)
	eventually(t, 10*time.Second, "the leader service to end", func() bool {
		s := h2.svc.Status()
		return s.State == Done || s.State == Failed
	})
	var hinted bool
	for _, e := range h2.bus.Recent(0) {
		if e.Kind == journal.Exit && strings.Contains(e.Message, "daemonizes") && strings.Contains(e.Message, "pidfile") {
			hinted = true
		}
	}
	if !hinted {
		t.Fatal("a leader that exits 0 with its tree alive was ended without the hint")
	}
}

// A pid in the pidfile that is not a member of the tree (a stale file, a
// foreign process) is never adopted, never signalled.
func TestPidfileWithAForeignPidIsRefused(t *testing.T) {
	foreign := testproc.Command("sleep")
	if err := foreign.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { foreign.Process.Kill(); foreign.Wait() }()
	pidfile := filepath.Join(t.TempDir(), "stale.pid")
	os.WriteFile(pidfile, []byte(fmt.Sprint(foreign.Process.Pid)), 0o644)
	cfg := fixture("exit", "0")
	cfg.PIDFile = pidfile
	cfg.Ready.Timeout = 300 * time.Millisecond
	cfg.Restart.Mode = restart.Never
	h := newHarness(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h.svc.Start(ctx, "", false)
	eventually(t, 10*time.Second, "the instance to end", func() bool { return h.svc.Status().State == Failed })
	st := h.svc.Status()
	if !strings.Contains(st.Reason, "not a process of this service's tree") {
		t.Fatalf("reason %q", st.Reason)
	}
	if alive, _ := testproc.Alive(foreign.Process.Pid); !alive {
		t.Fatal("the foreign process named by a stale pidfile was killed")
	}
}

// A stop hook that does not answer 2xx costs nothing: the signal follows
// at once. One that answers 2xx is waited for (up to half the grace).
func TestStopHookWaitsOnlyAfterSuccess(t *testing.T) {
	var code = http.StatusNotFound
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
	defer srv.Close()
	cfg := fixture("sleep")
	cfg.Stop = config.Stop{Signal: syscall.SIGTERM, Grace: 6 * time.Second, Hook: &config.Hook{Method: "POST", URL: srv.URL + "/sdapi/v1/server-stop"}}
	h := newHarness(t, cfg)
	h.ensure()
	st, err := h.svc.Stop(context.Background())
	if err != nil || st.LastStop == nil {
		t.Fatal(err)
	}
	if d := st.LastStop.Duration; d >= 3*time.Second {
		t.Fatalf("a 404 from the hook cost %v of the grace", d)
	}
	var note string
	for _, e := range h.bus.Recent(0) {
		if e.Kind == journal.Signal && strings.Contains(e.Message, "stop hook") {
			note = e.Message
		}
	}
	if !strings.Contains(note, "404") || !strings.Contains(note, "at once") {
		t.Fatalf("journal: %q", note)
	}
	// Control: a hook that says yes (200) but does not stop the server is
	// waited for, half the grace, before the signal.
	code = http.StatusOK
	h.ensure()
	began := time.Now()
	h.svc.Stop(context.Background())
	if d := time.Since(began); d < 3*time.Second {
		t.Fatalf("a successful hook was not waited for (%v)", d)
	}
}

// fakeClock is a clock the test moves: timers fire only on Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *fakeClock
	at   time.Time
	f    func()
	done bool
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) interface{ Stop() bool } {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for _, t := range c.timers {
		if !t.done && !t.at.After(c.now) {
			t.done = true
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

// The lifecycle runs on the injected clock: a crash with an hour of
// backoff restarts when the test's clock says an hour passed, not before,
// and with real processes.
func TestBackoffRunsOnTheInjectedClock(t *testing.T) {
	cfg := fixture("exit", "1")
	cfg.Restart = restart.Policy{Mode: restart.OnFailure, Backoff: time.Hour, MaxBackoff: 2 * time.Hour, Burst: 10, Window: 24 * time.Hour}
	clock := &fakeClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	bus := journal.NewBus(1000, nil)
	s := New(cfg, Deps{Bus: bus, Clock: clock, Jitter: func() float64 { return 0 }})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		s.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.Start(ctx, "", false)
	eventually(t, 10*time.Second, "the first crash to reach backoff", func() bool { return s.Status().State == Backoff })
	st := s.Status()
	if want := clock.Now().Add(time.Hour); st.NextStart.After(want) || st.NextStart.Before(want.Add(-time.Minute)) {
		t.Fatalf("next start %v, want an hour after %v", st.NextStart, clock.Now())
	}
	clock.Advance(59 * time.Minute)
	if st := s.Status(); st.State != Backoff || st.Starts != 1 {
		t.Fatalf("restarted before its hour: %s, %d starts", st.State, st.Starts)
	}
	clock.Advance(time.Minute)
	eventually(t, 10*time.Second, "the restart after the hour", func() bool { return s.Status().Starts == 2 })
	if st := s.Status(); st.Restarts != 1 {
		t.Fatalf("restarts %d", st.Restarts)
	}
}

// Close answers what waits (it used to strand the caller), and a tree it
// leaves is still followed: a stop after Close still empties it.
func TestCloseAnswersWaitersAndKeepsTheTree(t *testing.T) {
	cfg := fixture("sleep")
	cfg.Ready = config.Probe{Log: regexp.MustCompile("never printed"), Timeout: time.Minute, Interval: 10 * time.Millisecond}
	bus := journal.NewBus(1000, nil)
	s := New(cfg, Deps{Bus: bus})
	answered := make(chan error, 1)
	go func() {
		_, err := s.Start(context.Background(), "", true)
		answered <- err
	}()
	eventually(t, 10*time.Second, "the instance to start", func() bool { return s.Status().State == Starting })
	inst := s.Status().Instance
	s.Close()
	select {
	case err := <-answered:
		if CodeOf(err) != CodeShuttingDown {
			t.Fatalf("start answered %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a start waiting for readiness was stranded by Close")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Start(ctx, "", false); CodeOf(err) != CodeShuttingDown {
		t.Fatalf("a start after Close: %v", err)
	}
	if st, err := s.Stop(ctx); err != nil || st.State != Stopped {
		t.Fatalf("stop after Close: %v %s", err, st.State)
	}
	if left := testproc.Carriers(inst); len(left) > 0 {
		t.Fatalf("left %v", left)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the owner goroutine lingers after its tree is gone")
	}
}

// The main process of an unhealthy instance dies: the instance ends there
// and then (not at the liveness limit), its remains are stopped, and it is
// restarted.
func TestUnhealthyInstanceThatDiesIsRestarted(t *testing.T) {
	port := freePort(t)
	cfg := webuiService(t, port, "--unhealthy-after", "200ms")
	cfg.Lifetime = config.LifetimeLeader
	cfg.Argv = testproc.Command("webui", "--http", fmt.Sprintf("127.0.0.1:%d", port), "--unhealthy-after", "200ms").Args
	cfg.Health = config.Health{Probe: config.Probe{HTTP: fmt.Sprintf("http://127.0.0.1:%d/", port), Timeout: time.Second, Interval: 20 * time.Millisecond}, Failures: 1000}
	h := newHarness(t, cfg)
	first := h.ensure()
	eventually(t, 20*time.Second, "the instance to be unhealthy", func() bool { return h.svc.Status().State == Unhealthy })
	syscall.Kill(first.PID, syscall.SIGKILL)
	var st Status
	eventually(t, 20*time.Second, "a new instance", func() bool {
		st = h.svc.Status()
		return st.Instance != first.Instance && st.Instance != ""
	})
	if st.Restarts != 1 || st.LastExit == nil || !st.LastExit.Signaled {
		t.Fatalf("restarts %d, last exit %+v", st.Restarts, st.LastExit)
	}
	if left := testproc.Carriers(first.Instance); len(left) > 0 {
		t.Fatalf("the dead instance left %v", left)
	}
}

// A service whose earlier run left a tree corral could not stop starts
// nothing beside it: the start is refused with code leftover and the
// reason, each start asks again, and once the leftover is gone it starts.
// Control: the same service with nothing left starts at once.
func TestLeftoverRefusesTheStartUntilItIsGone(t *testing.T) {
	var mu sync.Mutex
	left := errors.New("instance abc of an earlier run could not be stopped: 1 processes survive: pid 4242 x")
	asked := 0
	s := New(fixture("sleep"), Deps{Bus: journal.NewBus(100, nil), Leftover: func(name string) error {
		mu.Lock()
		defer mu.Unlock()
		asked++
		return left
	}})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.Start(ctx, "", true)
	if CodeOf(err) != CodeLeftover || !strings.Contains(err.Error(), "pid 4242") {
		t.Fatalf("start beside a leftover: %v", err)
	}
	if st := s.Status(); st.Instance != "" || st.PID != 0 {
		t.Fatalf("something was spawned: %+v", st)
	}
	mu.Lock()
	left = nil // a reap found it gone
	mu.Unlock()
	st, err := s.Start(ctx, "", true)
	if err != nil || st.PID == 0 {
		t.Fatalf("start once the leftover is gone: %v %+v", err, st)
	}
	mu.Lock()
	defer mu.Unlock()
	if asked != 2 {
		t.Fatalf("the leftover was asked %d times, want once per start", asked)
	}
	if _, err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if left := testproc.Carriers(st.Instance); len(left) > 0 {
		t.Fatalf("left %v", left)
	}
}
