package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/gpu"
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

func mustParse(t testing.TB, src string) *config.File {
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

// A view gives a tree's CPU time and, where nvidia-smi answers, the GPU
// memory of its members; without nvidia-smi it says nothing of GPUs
// rather than 0.
func TestViewCPUAndGPU(t *testing.T) {
	exe, _ := os.Executable()
	src := fmt.Sprintf("[services.spin]\ncommand = [%q, \"spin\"]\nenv = { CORRAL_TESTPROC = \"spin\", GORACE = \"atexit_sleep_ms=0\" }\n", exe)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	smi := filepath.Join(dir, "nvidia-smi")
	// The stand-in lists the pid the test writes, with 300 MiB.
	os.WriteFile(smi, []byte("#!/bin/sh\n[ -f "+pidFile+" ] && echo \"$(cat "+pidFile+"), 300\"\nexit 0\n"), 0o755)
	now := time.Unix(0, 0)
	reader := &gpu.Reader{Path: smi, TTL: time.Second, Now: func() time.Time { return now }}
	s, err := New(mustParse(t, src), Options{StateDir: t.TempDir(), GPU: reader})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v0, err := s.StartWith(ctx, "spin", service.StartOptions{Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(pidFile, []byte(strconv.Itoa(v0.PID)), 0o644)
	deadline := time.Now().Add(10 * time.Second)
	for {
		now = now.Add(2 * time.Second) // past the reader's TTL: a fresh answer
		v, err := s.Inspect("spin")
		if err != nil {
			t.Fatal(err)
		}
		if v.CPUSeconds > 0 && v.GPUMemory != nil {
			if *v.GPUMemory != 300<<20 || len(v.Members) != 1 || v.Members[0].GPUMemory == nil || *v.Members[0].GPUMemory != 300<<20 {
				t.Fatalf("gpu %v, members %+v", *v.GPUMemory, v.Members)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CPU or GPU figure after 10s of spinning: cpu %v gpu %v", v.CPUSeconds, v.GPUMemory)
		}
		time.Sleep(20 * time.Millisecond) // CPU time accrues in ticks; nothing to wait on
	}
	// Without nvidia-smi: no GPU figure at all.
	s2 := newSup(t, svcTOML("idle", ""))
	if v := s2.List(false)[0]; v.GPUMemory != nil || v.Profiles == nil {
		t.Fatalf("without a GPU reader: gpu %v profiles %v", v.GPUMemory, v.Profiles)
	}
}

// A stop checks that the GPU memory its tree held was released: with a
// stand-in nvidia-smi that lists the leader while it lives, the stop says
// released; with one that keeps listing it (a driver that has not let go),
// it says which pid is still listed.
func TestStopChecksGPURelease(t *testing.T) {
	src := svcTOML("g", "")
	dir := t.TempDir()
	pidFile, sticky := filepath.Join(dir, "pid"), filepath.Join(dir, "sticky")
	smi := filepath.Join(dir, "nvidia-smi")
	os.WriteFile(smi, []byte("#!/bin/sh\n[ -f "+pidFile+" ] || exit 0\npid=$(cat "+pidFile+")\n"+
		"if kill -0 $pid 2>/dev/null || [ -f "+sticky+" ]; then echo \"$pid, 1024\"; fi\n"), 0o755)
	s, err := New(mustParse(t, src), Options{StateDir: t.TempDir(), GPU: &gpu.Reader{Path: smi}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, stuck := range []bool{false, true} {
		st, err := s.StartWith(ctx, "g", service.StartOptions{Wait: true})
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(pidFile, []byte(strconv.Itoa(st.PID)), 0o644)
		if stuck {
			os.WriteFile(sticky, nil, 0o644)
		}
		if _, err := s.Stop(ctx, "g"); err != nil {
			t.Fatal(err)
		}
		v, _ := s.Inspect("g")
		r := v.LastStopGPU
		if r == nil || r.Held != 1024<<20 || r.Holders != 1 || r.Released == stuck || (stuck && !slices.Equal(r.Left, []int{st.PID})) {
			t.Fatalf("stuck=%v: last_stop_gpu %+v", stuck, r)
		}
	}
}

// limits.gpu_memory is a runaway limit like memory: a tree whose members
// hold more GPU memory (as nvidia-smi says) is acted on. With the limit
// above the usage nothing happens: the control.
func TestGPUMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		limit  string
		breach bool
	}{{"512MiB", true}, {"4GiB", false}} {
		dir := t.TempDir()
		pidFile := filepath.Join(dir, "pid")
		smi := filepath.Join(dir, "nvidia-smi")
		os.WriteFile(smi, []byte("#!/bin/sh\n[ -f "+pidFile+" ] && echo \"$(cat "+pidFile+"), 1024\"\nexit 0\n"), 0o755)
		src := "[corral]\nwatch_interval = \"20ms\"\n" + svcTOML("g", "limits = { gpu_memory = \""+tc.limit+"\" }\non_limit = \"stop\"\nrestart = { policy = \"never\" }")
		s, err := New(mustParse(t, src), Options{StateDir: t.TempDir(), GPU: &gpu.Reader{Path: smi, TTL: 10 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := s.StartWith(ctx, "g", service.StartOptions{Wait: true})
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(pidFile, []byte(strconv.Itoa(st.PID)), 0o644)
		_, events, unsub := s.Bus().Subscribe(0)
		go s.Watch(ctx)
		var got *journal.Event
		deadline := time.After(2 * time.Second) // 100 watch intervals
	wait:
		for {
			select {
			case e := <-events:
				if e.Kind == journal.Runaway && e.Service == "g" {
					got = &e
					break wait
				}
			case <-deadline:
				break wait
			}
		}
		unsub()
		cancel()
		s.Shutdown(context.Background())
		switch {
		case tc.breach && (got == nil || got.Fields["kind"] != "gpu_memory" || got.Fields["gpu_memory"] != fmt.Sprint(1024<<20)):
			t.Fatalf("limit %s: runaway event %+v, want a gpu_memory breach", tc.limit, got)
		case !tc.breach && got != nil:
			t.Fatalf("limit %s above the usage: %+v", tc.limit, got)
		}
	}
}
