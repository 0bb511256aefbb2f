package supervisor

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/service"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}

func svcTOML(name, extra string) string {
	exe, _ := os.Executable()
	return fmt.Sprintf("[services.%s]\ncommand = [%q, \"sleep\"]\nenv = { CORRAL_TESTPROC = \"sleep\", GORACE = \"atexit_sleep_ms=0\" }\n%s\n", name, exe, extra)
}

func mustParse(t *testing.T, src string) *config.File {
	t.Helper()
	f, err := config.Parse("test.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newSup(t *testing.T, src string) *Supervisor {
	s, err := New(mustParse(t, src), Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		res := s.Shutdown(context.Background())
		if len(res.Survivors) > 0 {
			t.Errorf("survivors after cleanup: %+v", res.Survivors)
		}
	})
	return s
}

func TestAutoStartOrderAndReload(t *testing.T) {
	src := svcTOML("a", "") + svcTOML("b", `after = ["a"]`) + svcTOML("c", "autostart = false")
	s := newSup(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.AutoStart(ctx); err != nil {
		t.Fatal(err)
	}
	state := map[string]View{}
	for _, v := range s.List(false) {
		state[v.Name] = v
	}
	if state["a"].State != service.Ready || state["b"].State != service.Ready || state["c"].State != service.Stopped {
		t.Fatalf("after autostart: a=%s b=%s c=%s", state["a"].State, state["b"].State, state["c"].State)
	}
	var aReady, bSpawn uint64
	for _, e := range s.Bus().Recent(0) {
		if e.Service == "a" && e.Kind == journal.Ready {
			aReady = e.Seq
		}
		if e.Service == "b" && e.Kind == journal.Spawn {
			bSpawn = e.Seq
		}
	}
	if aReady == 0 || bSpawn < aReady {
		t.Fatalf("b spawned (event %d) before a was ready (event %d)", bSpawn, aReady)
	}

	// Reload: b changes, c goes, d comes, a stays untouched.
	next := svcTOML("a", "") + svcTOML("b", "after = [\"a\"]\nstop = { grace = \"3s\" }") + svcTOML("d", "")
	res, err := s.Reload(ctx, mustParse(t, next))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Added, []string{"d"}) || !slices.Equal(res.Removed, []string{"c"}) ||
		!slices.Equal(res.Changed, []string{"b"}) || !slices.Equal(res.Unchanged, []string{"a"}) {
		t.Fatalf("reload result %+v", res)
	}
	after := map[string]View{}
	for _, v := range s.List(false) {
		after[v.Name] = v
	}
	if after["a"].Instance != state["a"].Instance {
		t.Error("unchanged service a was restarted")
	}
	if after["b"].Instance == state["b"].Instance || after["b"].Instance == "" {
		t.Error("changed service b was not restarted")
	}
	if _, ok := after["c"]; ok {
		t.Error("removed service c still listed")
	}
	if _, err := s.Ensure(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if left := testproc.Carriers(state["b"].Instance); len(left) > 0 {
		t.Fatalf("b's old instance left %v", left)
	}
}

func TestShutdownIsVerified(t *testing.T) {
	s := newSup(t, svcTOML("a", "")+svcTOML("b", `after = ["a"]`))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.AutoStart(ctx); err != nil {
		t.Fatal(err)
	}
	a, _ := s.Inspect("a")
	// Negative control: a process carrying a's marker that no container
	// holds (what a naive stop would leave). The scan must name it.
	planted := testproc.Command("sleep")
	planted.Env = append(planted.Env, "CORRAL_INSTANCE="+a.Instance)
	if err := planted.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { planted.Process.Kill(); planted.Wait() }()
	res := s.Shutdown(ctx)
	if !slices.Equal(res.Stopped, []string{"a", "b"}) || len(res.Errors) > 0 {
		t.Fatalf("shutdown %+v", res)
	}
	if m, _, _ := proctree.Resolve(proctree.Options{}); m == proctree.ProcessGroup {
		// In tier B a marker carrier is a member by definition: the stop
		// of a ends it, so there is no survivor to name. (A survivor the
		// stop cannot end needs a process corral cannot signal; the cgroup
		// tier shows the independent scan below.)
		if len(res.Survivors) != 0 {
			t.Fatalf("survivors %+v in tier B, want none", res.Survivors)
		}
		if err := planted.Wait(); err == nil {
			t.Fatal("the planted marker carrier exited by itself; tier B's stop should have killed it")
		}
		return
	}
	if len(res.Survivors) != 1 || res.Survivors[0].PID != planted.Process.Pid || res.Survivors[0].Service != "a" {
		t.Fatalf("survivors %+v, want exactly the planted pid %d", res.Survivors, planted.Process.Pid)
	}
	planted.Process.Kill()
	planted.Wait()
	if left := s.Survivors(); len(left) != 0 {
		t.Fatalf("survivors after removing the planted process: %+v", left)
	}
	// b stopped before a (reverse dependency order).
	var aStop, bStop uint64
	for _, e := range s.Bus().Recent(0) {
		if e.Kind == journal.Stopped && e.Service == "a" {
			aStop = e.Seq
		}
		if e.Kind == journal.Stopped && e.Service == "b" {
			bStop = e.Seq
		}
	}
	if bStop == 0 || aStop < bStop {
		t.Fatalf("a stopped (event %d) before b (event %d)", aStop, bStop)
	}
	if _, err := s.Ensure(ctx, "a"); err == nil {
		t.Fatal("start accepted after shutdown")
	}
}
