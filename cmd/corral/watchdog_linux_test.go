package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/pidslimit"
	"github.com/corral-sh/corral/internal/testproc"
)

func runaways(e *env) []client.Event {
	var out []client.Event
	e.client().Events(context.Background(), 0, false, func(ev client.Event) error {
		if ev.Kind == "runaway" {
			out = append(out, ev)
		}
		return nil
	})
	return out
}

func bundles(t *testing.T, e *env, prefix string) []string {
	ms, _ := filepath.Glob(filepath.Join(e.dir, ".corral", "bundles", "*-"+prefix+"*.tar.gz"))
	return ms
}

const forkBomb = `
[corral]
watch_interval = "100ms"
bundle_cooldown = "1m"

[services.bomb]
# Bounded: it would reach 500 processes (each sleeps 60 s at most). It forks
# through a subshell, so a failed fork does not end the loop (and the
# sleepers are orphans, as in a real bomb).
shell = "i=0; while [ $i -lt 500 ]; do (sleep 60 &) 2>/dev/null; i=$((i+1)); done; exec sleep 60"
limits = { processes = 64 }
on_limit = "stop"
`

func waitRunaway(t *testing.T, e *env) client.Event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if rs := runaways(e); len(rs) > 0 {
			return rs[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("no runaway event")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitState(t *testing.T, e *env, name, state string) client.Service {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := e.inspect(name)
		if s.State == state {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never %s: %+v", name, state, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Where the kernel enforces the limit, the bomb never has more than 64
// members alive; it is frozen and stopped, one bundle is written, nothing
// survives.
func TestE2EForkBombKernelLimited(t *testing.T) {
	if _, err := pidslimit.Probe(); err != nil || os.Geteuid() != 0 {
		t.Skipf("no kernel process limits here (%v, euid %d)", err, os.Geteuid())
	}
	e := newEnv(t, forkBomb)
	e.foreground()
	e.must("start", "bomb")
	ids := e.instances()
	r := waitRunaway(t, e)
	// The kernel's count is of tasks (threads too), and members exit while
	// the bomb runs: how many processes are alive at the breach varies
	// under load (53 was seen in CI). What the kernel guarantees is the
	// ceiling.
	members, _ := strconv.Atoi(r.Fields["members"])
	var refused int
	if m := regexp.MustCompile(`(\d+) forks refused`).FindStringSubmatch(r.Message); m != nil {
		refused, _ = strconv.Atoi(m[1])
	}
	// The breach is seen either way: the kernel refused a fork, or the
	// accounting found the tree at the ceiling first.
	if members > 64 || (refused == 0 && members < 64) {
		t.Fatalf("runaway at %d members, %d forks refused, with a kernel limit of 64: %+v", members, refused, r)
	}
	if !strings.Contains(r.Message, "limit") {
		t.Fatalf("runaway message %q", r.Message)
	}
	s := waitState(t, e, "bomb", "stopped")
	if !strings.Contains(s.Reason, "watchdog") {
		t.Fatalf("stopped for %q", s.Reason)
	}
	if n := len(bundles(t, e, "runaway-bomb")); n != 1 {
		t.Fatalf("%d bundles written, want 1", n)
	}
	if left := carriersOf(ids); len(left) > 0 {
		t.Fatalf("survivors %v", left)
	}
	t.Logf("kernel-limited bomb: runaway at %s members, %s", r.Fields["members"], r.Message)
}

// Without kernel enforcement (the fallback), accounting notices within one
// interval, freezes the tree and reports the overshoot.
func TestE2EForkBombAccountingOnly(t *testing.T) {
	e := newEnv(t, forkBomb)
	cmd := e.command("daemon", "--containment", "pgroup")
	cmd.Env = append(cmd.Env, "CORRAL_KERNEL_LIMITS=off")
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for _, err := e.client().Daemon(context.Background()); err != nil; _, err = e.client().Daemon(context.Background()) {
		if time.Now().After(deadline) {
			t.Fatal("daemon never answered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.must("start", "bomb")
	ids := e.instances()
	r := waitRunaway(t, e)
	members, _ := strconv.Atoi(r.Fields["members"])
	if members < 64 {
		t.Fatalf("runaway below the limit: %+v", r)
	}
	waitState(t, e, "bomb", "stopped")
	if n := len(bundles(t, e, "runaway-bomb")); n != 1 {
		t.Fatalf("%d bundles written, want 1", n)
	}
	if left := carriersOf(ids); len(left) > 0 {
		t.Fatalf("survivors %v", left)
	}
	t.Logf("accounting only: frozen at %d members (overshoot %d over 64)", members, members-64)
}

func TestE2EMemoryHogIsRestarted(t *testing.T) {
	e := newEnv(t, `
[corral]
watch_interval = "100ms"
[services.hog]
# Four children that each keep a 60 MB buffer resident: dd reads 60 MB into
# its buffer, then blocks writing it to a pipe nobody reads.
shell = "for i in 1 2 3 4; do dd if=/dev/zero bs=60M count=1 2>/dev/null | sleep 1000 & done; echo all children hold their memory; wait"
ready = { log = "all children hold their memory", timeout = "30s" }
limits = { memory = "150MB" }
on_limit = "restart"
restart = { backoff = "2s" }
`)
	e.foreground()
	e.must("ensure", "hog")
	ids := e.instances()
	r := waitRunaway(t, e)
	rss, _ := strconv.ParseInt(r.Fields["rss"], 10, 64)
	if r.Fields["kind"] != "memory" || rss <= 150e6 || r.Fields["limit_memory"] != "150000000" {
		t.Fatalf("runaway %+v", r)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := e.inspect("hog")
		if s.Instance != "" && s.Instance != ids[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restarted: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if left := testproc.Carriers(ids[0]); len(left) > 0 {
		t.Fatalf("the old tree left %v", left)
	}
	// The watchdog's restart goes through the policy: it is counted, and
	// it waited the backoff (2s, shortened by jitter by at most 20%) after
	// the old tree was empty. (It used to respawn at once, RESTARTS 0.)
	s := e.inspect("hog")
	if s.Restarts != 1 {
		t.Fatalf("restarts %d, want 1", s.Restarts)
	}
	// The new instance shows in the status as its start is checked, before
	// its spawn is journaled: wait for the spawn record itself.
	var emptied, respawned time.Time
	for deadline := time.Now().Add(20 * time.Second); respawned.IsZero() && time.Now().Before(deadline); {
		e.client().Events(context.Background(), 0, false, func(ev client.Event) error {
			switch {
			case ev.Kind == "stopped" && ev.Instance == ids[0]:
				emptied = ev.Time
			case ev.Kind == "spawn" && ev.Service == "hog" && ev.Instance != ids[0] && respawned.IsZero():
				// The first spawn after the old instance: the status's
				// instance id may be a later one's by now.
				respawned = ev.Time
			}
			return nil
		})
		if respawned.IsZero() {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if gap := respawned.Sub(emptied); emptied.IsZero() || gap < 1500*time.Millisecond {
		t.Fatalf("respawned %v after the old tree was empty, want the 2s backoff", gap)
	}
	t.Logf("memory breach: %s", r.Message)
}

// The leak alarm catches a process carrying the marker of one of our ended
// instances outside any container and reaps it; a process with a marker
// that is not ours is never touched.
func TestE2ELeakAlarm(t *testing.T) {
	e := newEnv(t, `
[corral]
leak_sweep = "200ms"
[services.a]
command = ["/bin/sleep", "1000"]
`)
	e.foreground()
	e.must("ensure", "a")
	old := e.inspect("a").Instance
	e.must("stop", "a")
	planted := testproc.Command("sleep")
	planted.Env = append(planted.Env, "CORRAL_INSTANCE="+old)
	foreign := testproc.Command("sleep")
	foreign.Env = append(foreign.Env, "CORRAL_INSTANCE=0000000000000000000000ff")
	for _, c := range []interface{ Start() error }{planted, foreign} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { foreign.Process.Kill(); foreign.Wait(); planted.Process.Kill(); planted.Wait() }()
	done := make(chan struct{})
	go func() { planted.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the planted leak was not reaped")
	}
	var leak bool
	e.client().Events(context.Background(), 0, false, func(ev client.Event) error {
		leak = leak || (ev.Kind == "leak" && ev.Instance == old)
		return nil
	})
	if !leak {
		t.Fatal("no leak event")
	}
	if alive, _ := testproc.Alive(foreign.Process.Pid); !alive {
		t.Fatal("a process with a marker that is not ours was killed")
	}
}
