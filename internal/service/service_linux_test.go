package service

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/restart"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// webuiService is the fixture tree as a service: sh → webui (HTTP on port)
// → workers, daemon, respawner.
func webuiService(t *testing.T, port int, extra ...string) *config.Service {
	cmd := testproc.ShellWrapped("webui", append([]string{"--http", fmt.Sprintf("127.0.0.1:%d", port)}, extra...)...)
	return &config.Service{
		Name: "webui", Argv: cmd.Args, Env: cmd.Env[len(cmd.Env)-2:], Lifetime: config.LifetimeLeader, StdinNull: true,
		Ready: config.Probe{HTTP: fmt.Sprintf("http://127.0.0.1:%d/", port), Log: regexp.MustCompile(`Running on local URL`),
			Timeout: 20 * time.Second, Interval: 20 * time.Millisecond},
		Restart: restart.Policy{Mode: restart.Always, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Burst: 50, Window: time.Minute},
		Stop:    config.Stop{Signal: syscall.SIGTERM, Grace: 2 * time.Second},
	}
}

type harness struct {
	t   *testing.T
	svc *Service
	bus *journal.Bus
}

func newHarness(t *testing.T, cfg *config.Service) *harness {
	return newHarnessIn(t, cfg, proctree.Auto)
}

// newHarnessIn runs the service under a given containment tier.
func newHarnessIn(t *testing.T, cfg *config.Service, tier proctree.Containment) *harness {
	bus := journal.NewBus(1000, nil)
	s := New(cfg, Deps{Bus: bus, Containment: tier, OwnerOf: func(int) string { return "" }})
	h := &harness{t: t, svc: s, bus: bus}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		s.Close()
		for _, e := range bus.Recent(0) {
			if e.Kind == journal.Spawn {
				if left := testproc.Carriers(e.Instance); len(left) > 0 {
					t.Errorf("instance %s left %v", e.Instance, left)
				}
			}
		}
	})
	return h
}

func (h *harness) ensure() Status {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := h.svc.Ensure(ctx)
	if err != nil {
		h.t.Fatalf("ensure: %v", err)
	}
	return st
}

func (h *harness) spawns() []journal.Event {
	var out []journal.Event
	for _, e := range h.bus.Recent(0) {
		if e.Kind == journal.Spawn {
			out = append(out, e)
		}
	}
	return out
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for d := time.Millisecond; !cond(); d = min(2*d, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(d)
	}
}

func members(t *testing.T, s *Service) int {
	tr := s.Tree()
	if tr == nil {
		return 0
	}
	ms, err := tr.Members()
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

func TestConcurrentEnsureSpawnsOnce(t *testing.T) {
	h := newHarness(t, webuiService(t, freePort(t)))
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if st, err := h.svc.Ensure(ctx); err != nil || st.State != Ready {
				errs <- fmt.Errorf("ensure: %v (%s)", err, st.State)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(h.spawns()); n != 1 {
		t.Fatalf("100 concurrent ensures spawned %d instances", n)
	}
}

// The crash of the main process: the rest of its tree is stopped completely
// before the next instance starts, so the count stays exactly constant.
func TestCrashOfMainProcessRestartsWithoutRemains(t *testing.T) {
	h := newHarness(t, webuiService(t, freePort(t)))
	st := h.ensure()
	want := members(t, h.svc)
	for i := 0; i < 3; i++ {
		old := st.Instance
		// The main process is the one under the shell wrapper.
		var main int
		ms, _ := h.svc.Tree().Members()
		for _, m := range ms {
			if m.PPID == st.PID {
				main = m.PID
			}
		}
		syscall.Kill(main, syscall.SIGKILL)
		eventually(t, 30*time.Second, "a new instance to be ready", func() bool {
			st = h.svc.Status()
			return st.State == Ready && st.Instance != old
		})
		if left := testproc.Carriers(old); len(left) != 0 {
			t.Fatalf("crash %d: the old instance left %v", i+1, left)
		}
		if got := members(t, h.svc); got != want {
			t.Fatalf("crash %d: %d members, want %d", i+1, got, want)
		}
		// The old tree was gone before the new one was spawned.
		var stoppedOld, spawnedNew uint64
		for _, e := range h.bus.Recent(0) {
			if e.Kind == journal.Stopped && e.Instance == old {
				stoppedOld = e.Seq
			}
			if e.Kind == journal.Spawn && e.Instance == st.Instance {
				spawnedNew = e.Seq
			}
		}
		if stoppedOld == 0 || spawnedNew < stoppedOld {
			t.Fatalf("crash %d: new instance spawned (event %d) before the old tree was empty (event %d)", i+1, spawnedNew, stoppedOld)
		}
	}
	if st.Restarts != 3 {
		t.Errorf("restarts %d, want 3", st.Restarts)
	}
}

// The "connection lost" case: alive but not answering. After `failures`
// failed probes the instance is replaced, and its old tree is gone first.
func TestUnhealthyServiceIsReplaced(t *testing.T) {
	port := freePort(t)
	cfg := webuiService(t, port, "--unhealthy-after", "300ms")
	cfg.Health = config.Health{Probe: config.Probe{HTTP: fmt.Sprintf("http://127.0.0.1:%d/", port), Timeout: time.Second, Interval: 50 * time.Millisecond}, Failures: 3}
	h := newHarness(t, cfg)
	first := h.ensure()
	eventually(t, 30*time.Second, "a replacement instance", func() bool {
		st := h.svc.Status()
		return st.Instance != first.Instance && st.Instance != ""
	})
	if left := testproc.Carriers(first.Instance); len(left) != 0 {
		t.Fatalf("old unhealthy tree left %v", left)
	}
	var fails int
	for _, e := range h.bus.Recent(0) {
		if e.Kind == journal.Health && e.Instance == first.Instance && strings.Contains(e.Message, "liveness probe failed") {
			fails++
		}
	}
	if fails != 3 {
		t.Fatalf("replaced after %d failed probes, want 3", fails)
	}
}

func TestTermIgnoringServiceStoppedWithinGrace(t *testing.T) {
	cmd := testproc.Command("termignore")
	cfg := &config.Service{Name: "stubborn", Argv: cmd.Args, Env: cmd.Env[len(cmd.Env)-2:], Lifetime: config.LifetimeLeader, StdinNull: true,
		Ready:   config.Probe{Log: regexp.MustCompile(`ignoring SIGTERM`), Timeout: 10 * time.Second, Interval: 10 * time.Millisecond},
		Restart: restart.Defaults(), Stop: config.Stop{Signal: syscall.SIGTERM, Grace: 500 * time.Millisecond}}
	h := newHarness(t, cfg)
	h.ensure()
	began := time.Now()
	st, err := h.svc.Stop(context.Background())
	took := time.Since(began)
	if err != nil || st.State != Stopped {
		t.Fatalf("stop: %v (%s)", err, st.State)
	}
	if st.LastStop == nil || st.LastStop.Killed != 1 {
		t.Fatalf("report %+v: want the ignorer killed", st.LastStop)
	}
	if took > cfg.Stop.Grace+time.Second {
		t.Fatalf("stop took %v, more than grace %v + 1s", took, cfg.Stop.Grace)
	}
}

func TestCrashLoopFailsAfterBurst(t *testing.T) {
	cmd := testproc.Command("exit", "3")
	cfg := &config.Service{Name: "crasher", Argv: cmd.Args, Env: cmd.Env[len(cmd.Env)-2:], Lifetime: config.LifetimeLeader, StdinNull: true,
		// It never gets ready: ensure waits through the restarts to the verdict.
		Ready:   config.Probe{Log: regexp.MustCompile(`never printed`), Timeout: 10 * time.Second, Interval: 10 * time.Millisecond},
		Restart: restart.Policy{Mode: restart.OnFailure, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Burst: 4, Window: time.Minute},
		Stop:    config.Stop{Signal: syscall.SIGTERM, Grace: time.Second}}
	h := newHarness(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := h.svc.Ensure(ctx)
	if err == nil || !strings.Contains(err.Error(), "failed") || !strings.Contains(err.Error(), "burst 4") {
		t.Fatalf("ensure of a crash loop: %v", err)
	}
	st := h.svc.Status()
	if st.State != Failed || st.Starts != cfg.Restart.Burst || st.LastExit == nil || st.LastExit.Code != 3 {
		t.Fatalf("status %+v", st)
	}
	// A manual start bypasses the limit.
	if _, err := h.svc.Start(ctx, "", false); err != nil {
		t.Fatalf("manual start after failure: %v", err)
	}
}

func TestForeignServerOnPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// A foreign holder that does not answer the probe: refused, untouched.
	holder := testproc.Command("sleep")
	holder.ExtraFiles = []*os.File{mustFile(t, ln)}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	cfg := webuiService(t, port)
	cfg.Ready.Timeout = 2 * time.Second
	cfg.Ready.Log = nil
	cfg.Ready.HTTP = ""
	cfg.Ready.TCP = fmt.Sprintf("127.0.0.1:%d", port+0)
	cfg.Ready.Exec = []string{"/bin/false"}
	h := newHarness(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = h.svc.Ensure(ctx)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("port %d is held by pid", port)) || !strings.Contains(err.Error(), "corral did not start") {
		t.Fatalf("ensure with a foreign holder: %v", err)
	}
	if alive, _ := testproc.Alive(holder.Process.Pid); !alive {
		t.Fatal("the foreign holder was killed")
	}
	if len(h.spawns()) != 0 {
		t.Fatal("spawned despite the held port")
	}
}

func TestHealthyForeignServerIsExternal(t *testing.T) {
	port := freePort(t)
	// Someone else's WebUI already runs on the port.
	foreign, err := proctree.Start(testproc.Command("webui", "--http", fmt.Sprintf("127.0.0.1:%d", port), "--workers", "0"), proctree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Stop(context.Background(), syscall.SIGKILL, 0)
	cfg := webuiService(t, port)
	cfg.Ready.Log = nil
	eventually(t, 10*time.Second, "the foreign server to listen", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	h := newHarness(t, cfg)
	st := h.ensure()
	if st.State != External || len(st.ExternalPIDs) == 0 {
		t.Fatalf("status %+v, want external", st)
	}
	if _, err := h.svc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ms, _ := foreign.Members(); len(ms) == 0 {
		t.Fatal("corral stopped a server it did not start")
	}
	if len(h.spawns()) != 0 {
		t.Fatal("spawned a second server")
	}
}

func mustFile(t *testing.T, ln net.Listener) *os.File {
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRestartKeepsCountConstant(t *testing.T) {
	h := newHarness(t, webuiService(t, freePort(t)))
	h.ensure()
	want := members(t, h.svc)
	var ids []string
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := h.svc.Restart(ctx, "", true)
		cancel()
		if err != nil || st.State != Ready {
			t.Fatalf("restart %d: %v (%s)", i, err, st.State)
		}
		ids = append(ids, st.Instance)
		if got := members(t, h.svc); got != want {
			t.Fatalf("restart %d: %d members, want %d", i, got, want)
		}
	}
	for _, id := range ids[:len(ids)-1] {
		if left := testproc.Carriers(id); len(left) > 0 {
			t.Fatalf("instance %s left %v", id, left)
		}
	}
}

// An exec probe is a contained tree of its own, outside the service's: a
// Shutdown returns only once the probe in flight has ended with its
// container, so a daemon exiting right after leaves neither behind. (It
// used to return while the probe's stop ran on: CI found the probe's empty
// cgroup left under corral/ after the benchmarks.)
func TestShutdownWaitsForAnExecProbe(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "probe.pid")
	cmd := testproc.ShellWrapped("sleep")
	cfg := &config.Service{
		Name: "slowready", Argv: cmd.Args, Env: cmd.Env[len(cmd.Env)-2:], Lifetime: config.LifetimeLeader, StdinNull: true,
		// The probe records its pid, then hangs past the shutdown.
		Ready:   config.Probe{Exec: []string{"/bin/sh", "-c", "echo $$ > " + pidFile + "; exec sleep 60"}, Timeout: time.Minute, Interval: time.Second},
		Restart: restart.Policy{Mode: restart.Never},
		Stop:    config.Stop{Signal: syscall.SIGTERM, Grace: time.Second},
	}
	s := New(cfg, Deps{Bus: journal.NewBus(100, nil), OwnerOf: func(int) string { return "" }})
	defer s.Close()
	if _, err := s.Start(context.Background(), "", false); err != nil {
		t.Fatal(err)
	}
	var pid int
	eventually(t, 10*time.Second, "the probe to run", func() bool {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	cg, _ := procinfo.CgroupV2Path(pid)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := procinfo.ReadStat(pid); err == nil && !st.Zombie() {
		t.Fatalf("the probe (pid %d) still runs after Shutdown returned", pid)
	}
	if root := cgroupRoot(); cg != "" && root != "" && strings.Contains(cg, "/corral/") {
		if _, err := os.Stat(filepath.Join(root, cg)); err == nil {
			t.Fatalf("the probe's cgroup %s is still there after Shutdown returned", cg)
		}
	}
}

// cgroupRoot is where the cgroup2 hierarchy is mounted ("" without one).
func cgroupRoot() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		for i, x := range f {
			if x == "-" && i+1 < len(f) && f[i+1] == "cgroup2" {
				return f[4]
			}
		}
	}
	return ""
}
