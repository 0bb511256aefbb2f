package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/testproc"
)

// env is one end-to-end environment: a directory with corral.toml and the
// daemon's state.
type env struct {
	t   testing.TB
	dir string
	exe string
}

func newEnv(t *testing.T, toml string) *env {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: t.TempDir(), exe: exe}
	e.write(toml)
	t.Cleanup(func() {
		// Whatever a test did, the daemon goes and nothing of ours stays.
		// The instances are listed first: after the shutdown nobody answers.
		ids := e.instances()
		e.corral("shutdown")
		for _, id := range ids {
			if left := testproc.Carriers(id); len(left) > 0 {
				t.Errorf("instance %s left %v", id, left)
			}
		}
	})
	return e
}

func (e *env) write(toml string) {
	// Fixture services run this binary; {exe} stands for it.
	toml = strings.ReplaceAll(toml, "{exe}", e.exe)
	if err := os.WriteFile(filepath.Join(e.dir, "corral.toml"), []byte(toml), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) command(args ...string) *exec.Cmd {
	cmd := exec.Command(e.exe, args...)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), asCorral+"=1", "GORACE=atexit_sleep_ms=0")
	return cmd
}

// corral runs the CLI and returns its combined output and exit code.
func (e *env) corral(args ...string) (string, int) {
	cmd := e.command(args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("corral %v: %v", args, err)
	}
	return out.String(), code
}

func (e *env) must(args ...string) string {
	e.t.Helper()
	out, code := e.corral(args...)
	if code != 0 {
		e.t.Fatalf("corral %v exited %d:\n%s", args, code, out)
	}
	return out
}

func (e *env) client() *client.Client {
	return client.New(ipc.Path(filepath.Join(e.dir, ".corral")))
}

func (e *env) inspect(name string) client.Service {
	e.t.Helper()
	var s client.Service
	if err := json.Unmarshal([]byte(e.must("status", name, "--json")), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// instances lists every instance id the daemon's events mention.
func (e *env) instances() []string {
	seen := map[string]bool{}
	var ids []string
	e.client().Events(context.Background(), 0, false, func(ev client.Event) error {
		if ev.Instance != "" && !seen[ev.Instance] {
			seen[ev.Instance] = true
			ids = append(ids, ev.Instance)
		}
		return nil
	})
	return ids
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func webuiTOML(port int, extra string) string {
	return fmt.Sprintf(`
[services.webui]
shell = "{exe} webui --http 127.0.0.1:%[1]d --ready-after 200ms"
env = { CORRAL_TESTPROC = "webui", GORACE = "atexit_sleep_ms=0" }
ready = { http = "http://127.0.0.1:%[1]d/", log = "Running on local URL", timeout = "30s", interval = "20ms" }
stop = { grace = "2s" }
restart = { policy = "always", backoff = "20ms", max_backoff = "100ms", burst = 50 }
%[2]s
`, port, extra)
}

func TestE2ERestartsKeepCountAndShutdownIsClean(t *testing.T) {
	e := newEnv(t, webuiTOML(freePort(t), ""))
	e.must("up")
	first := e.inspect("webui")
	if first.State != "ready" || first.MemberCount < testproc.WebUISize {
		t.Fatalf("after up: %+v", first)
	}
	n := 20
	if testing.Short() {
		n = 5
	}
	for i := 0; i < n; i++ {
		e.must("restart", "webui", "--wait")
		if s := e.inspect("webui"); s.MemberCount != first.MemberCount || s.State != "ready" {
			t.Fatalf("restart %d: %d members (%s), want %d", i+1, s.MemberCount, s.State, first.MemberCount)
		}
	}
	ids := e.instances()
	if len(ids) != n+1 {
		t.Fatalf("%d instances for %d restarts", len(ids), n)
	}
	out := e.must("shutdown")
	if !strings.Contains(out, "verified: 0 supervised processes remain") {
		t.Fatalf("shutdown said:\n%s", out)
	}
	for _, id := range ids {
		if left := testproc.Carriers(id); len(left) > 0 {
			t.Fatalf("instance %s left %v", id, left)
		}
	}
}

func TestE2EKilledMainProcessRestartsWithConstantCount(t *testing.T) {
	e := newEnv(t, webuiTOML(freePort(t), ""))
	e.must("up")
	s := e.inspect("webui")
	want := s.MemberCount
	for i := 0; i < 3; i++ {
		var main int
		for _, m := range s.Members {
			if m.PPID == s.PID { // the server under the shell wrapper
				main = m.PID
			}
		}
		if err := syscall.Kill(main, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		old := s.Instance
		deadline := time.Now().Add(30 * time.Second)
		for {
			s = e.inspect("webui")
			if s.Instance != old && s.State == "ready" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: no new ready instance: %+v", i+1, s)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if left := testproc.Carriers(old); len(left) > 0 {
			t.Fatalf("kill %d: the dead instance left %v", i+1, left)
		}
		if s.MemberCount != want {
			t.Fatalf("kill %d: %d members, want exactly %d", i+1, s.MemberCount, want)
		}
	}
	if s.Restarts != 3 {
		t.Fatalf("restarts %d, want 3", s.Restarts)
	}
}

func TestE2EConcurrentEnsureSpawnsOnce(t *testing.T) {
	e := newEnv(t, webuiTOML(freePort(t), "autostart = false"))
	e.must("up")
	cl := e.client()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, err := cl.Ensure(context.Background(), "webui", time.Minute); err != nil || s.State != "ready" {
				errs <- fmt.Errorf("%v (%s)", err, s.State)
			}
		}()
	}
	// A few through the CLI as well.
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, code := e.corral("ensure", "webui"); code != 0 {
				errs <- fmt.Errorf("cli ensure exited %d: %s", code, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ids := e.instances(); len(ids) != 1 {
		t.Fatalf("103 concurrent ensures spawned %d instances", len(ids))
	}
}

func TestE2ETermIgnoringServiceStopsWithinGrace(t *testing.T) {
	e := newEnv(t, `
[services.stubborn]
command = ["{exe}", "termignore"]
env = { CORRAL_TESTPROC = "termignore" }
ready = { log = "ignoring SIGTERM", timeout = "20s" }
stop = { grace = "1s" }
`)
	e.must("up")
	began := time.Now()
	out := e.must("stop", "stubborn")
	if took := time.Since(began); took > 2*time.Second+500*time.Millisecond {
		// grace + 1 s, plus the CLI's own start under -race
		t.Fatalf("stop took %v:\n%s", took, out)
	}
	if !strings.Contains(out, "1 killed") {
		t.Fatalf("stop output:\n%s", out)
	}
}

func TestE2ECrashLoopReachesFailed(t *testing.T) {
	e := newEnv(t, `
[services.crasher]
command = ["{exe}", "exit", "7"]
env = { CORRAL_TESTPROC = "exit" }
autostart = false
ready = { log = "never", timeout = "30s" }
restart = { policy = "on-failure", backoff = "10ms", max_backoff = "20ms", burst = 3, window = "1m" }
`)
	// Not autostarted: the daemon's own start of it could otherwise fail it
	// before up's ensure arrives, and that ensure (a manual start) would
	// then be a fourth start.
	out, code := e.corral("up", "crasher")
	if code != 1 || !strings.Contains(out, "failed") || !strings.Contains(out, "burst 3") {
		t.Fatalf("up of a crash loop exited %d:\n%s", code, out)
	}
	s := e.inspect("crasher")
	if s.State != "failed" || s.Starts != 3 || s.LastExit == nil || s.LastExit.Code != 7 {
		t.Fatalf("status %+v", s)
	}
}

func TestE2EForeignServerOnPort(t *testing.T) {
	port := freePort(t)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, _ := ln.(*net.TCPListener).File()
	holder := testproc.Command("sleep")
	holder.ExtraFiles = []*os.File{f}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	ln.Close()
	f.Close()
	e := newEnv(t, webuiTOML(port, ""))
	out, code := e.corral("up")
	want := fmt.Sprintf("port %d is held by pid %d", port, holder.Process.Pid)
	if code == 0 || !strings.Contains(out, want) || !strings.Contains(out, "sleep") {
		t.Fatalf("up with a foreign holder exited %d, want an error naming %q and its command line:\n%s", code, want, out)
	}
	if alive, _ := testproc.Alive(holder.Process.Pid); !alive {
		t.Fatal("corral killed the foreign holder")
	}
}

func TestE2EBadConfigs(t *testing.T) {
	e := newEnv(t, "[services.a]\ncommand = [\"/bin/sleep\", \"100\"]\nrestart = { policy = \"sometimes\" }\n")
	out, code := e.corral("daemon")
	if code != 1 || !strings.Contains(out, "corral.toml:3:13: services.a.restart.policy: unknown policy") {
		t.Fatalf("daemon with a bad config exited %d:\n%s", code, out)
	}
	// A running daemon keeps its set when a reload brings a bad file.
	e.write("[services.a]\ncommand = [\"/bin/sleep\", \"100\"]\n")
	e.must("up")
	before := e.inspect("a")
	e.write("[services.a]\ncomand = [\"/bin/sleep\", \"100\"]\n")
	out, code = e.corral("reload")
	if code == 0 || !strings.Contains(out, "corral.toml:2:1: services.a.comand: unknown key (did you mean \"command\"?)") || !strings.Contains(out, "nothing changed") {
		t.Fatalf("reload of a bad config exited %d:\n%s", code, out)
	}
	if after := e.inspect("a"); after.Instance != before.Instance || after.State != "ready" {
		t.Fatalf("a bad reload touched the running service: %+v", after)
	}
}

func TestE2EOneDaemonPerStateDirAndSignalShutdown(t *testing.T) {
	e := newEnv(t, webuiTOML(freePort(t), ""))
	d := e.command("daemon")
	var out bytes.Buffer
	d.Stdout, d.Stderr = &out, &out
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Process.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for _, err := e.client().Daemon(context.Background()); err != nil; _, err = e.client().Daemon(context.Background()) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon never answered: %v\n%s", err, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.must("ensure", "webui")
	if out2, code := e.corral("daemon"); code != 1 || !strings.Contains(out2, "another corral daemon is running") {
		t.Fatalf("second daemon exited %d:\n%s", code, out2)
	}
	ids := e.instances()
	d.Process.Signal(syscall.SIGTERM)
	err := d.Wait()
	if err != nil || !strings.Contains(out.String(), "verified: 0 supervised processes remain") {
		t.Fatalf("daemon after SIGTERM: %v\n%s", err, out.String())
	}
	for _, id := range ids {
		if left := testproc.Carriers(id); len(left) > 0 {
			t.Fatalf("instance %s left %v", id, left)
		}
	}
}

// Alive but not answering (the "connection lost" case that multiplied
// trees): replaced after `failures` probes, the old tree gone first.
func TestE2EUnhealthyServiceIsReplaced(t *testing.T) {
	port := freePort(t)
	toml := strings.Replace(webuiTOML(port, fmt.Sprintf(`health = { http = "http://127.0.0.1:%d/", interval = "100ms", failures = 3, timeout = "1s" }`, port)),
		"--ready-after 200ms", "--ready-after 200ms --unhealthy-after 600ms", 1)
	e := newEnv(t, toml)
	e.must("up")
	first := e.inspect("webui")
	deadline := time.Now().Add(30 * time.Second)
	var s client.Service
	for {
		s = e.inspect("webui")
		if s.Instance != first.Instance && s.Instance != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unhealthy instance never replaced: %+v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left := testproc.Carriers(first.Instance); len(left) > 0 {
		t.Fatalf("the unhealthy tree left %v", left)
	}
	var fails, stoppedAt, spawnedAt uint64
	e.client().Events(context.Background(), 0, false, func(ev client.Event) error {
		switch {
		case ev.Kind == "health" && ev.Instance == first.Instance && strings.Contains(ev.Message, "liveness probe failed"):
			fails++
		case ev.Kind == "stopped" && ev.Instance == first.Instance:
			stoppedAt = ev.Seq
		case ev.Kind == "spawn" && ev.Instance == s.Instance:
			spawnedAt = ev.Seq
		}
		return nil
	})
	if fails != 3 || stoppedAt == 0 || spawnedAt < stoppedAt {
		t.Fatalf("%d failed probes; old tree empty at event %d, new spawn at %d", fails, stoppedAt, spawnedAt)
	}
}

// Output through the daemon: progress-bar redraws kept as their last state,
// -n, and -f following new lines.
func TestE2ELogs(t *testing.T) {
	e := newEnv(t, `
[services.talker]
shell = "printf 'loading\\n'; for p in 10 50 100; do printf '\\r%3d%%' $p; done; printf '\\n'; echo ready; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done"
ready = { log = "^ready$", timeout = "20s" }
`)
	e.must("up")
	out := e.must("logs", "talker", "-n", "0")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || lines[0] != "loading" || lines[1] != "100%" || lines[2] != "ready" {
		t.Fatalf("logs:\n%s", out)
	}
	if strings.Count(out, "%") != 1 {
		t.Fatalf("progress redraws were kept:\n%s", out)
	}
	if got := e.must("logs", "talker", "-n", "1"); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "tick ") {
		t.Fatalf("logs -n 1: %q", got)
	}
	f := e.command("logs", "talker", "-f", "-n", "0")
	stdout, _ := f.StdoutPipe()
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { f.Process.Kill(); f.Wait() }()
	br := bufio.NewReader(stdout)
	seen := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < 3 && time.Now().Before(deadline) {
		line, err := br.ReadString('\n')
		if err != nil {
			break
		}
		seen[strings.TrimSpace(line)] = true
	}
	if len(seen) < 3 {
		t.Fatalf("logs -f delivered %v", seen)
	}
}

// lifetime = "tree": a launcher that starts the real server and exits. The
// instance lives while its container holds anything; when the server dies
// the instance ends and is restarted.
func TestE2ELifetimeTree(t *testing.T) {
	e := newEnv(t, `
[services.launched]
command = ["{exe}", "daemonize"]
env = { CORRAL_TESTPROC = "daemonize", GORACE = "atexit_sleep_ms=0" }
lifetime = "tree"
restart = { policy = "on-failure", backoff = "20ms" }
`)
	e.must("up")
	var s client.Service
	deadline := time.Now().Add(20 * time.Second)
	for {
		s = e.inspect("launched")
		if s.State == "ready" && s.MemberCount == 1 && s.LastExit == nil && s.PID != s.Leader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("launcher's server not held: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The launcher (the leader) is gone; the server it started is the tree,
	// and status names it as the main process.
	if alive, _ := testproc.Alive(s.Leader); alive {
		t.Fatalf("the launcher %d should have exited", s.Leader)
	}
	server := s.Members[0].PID
	if s.PID != server || s.MainFrom == "" {
		t.Fatalf("status names pid %d (%q) as the main process, want the server %d", s.PID, s.MainFrom, server)
	}
	syscall.Kill(server, syscall.SIGKILL)
	first := s.Instance
	for {
		s = e.inspect("launched")
		if s.Instance != first && s.State == "ready" && s.MemberCount == 1 {
			break
		}
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("not restarted after its server died: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.Restarts != 1 {
		t.Fatalf("restarts %d, want 1", s.Restarts)
	}
	// The server was killed: not "code 0" (the launcher's), not a made-up
	// status either.
	if s.LastExit == nil || s.LastExit.Code != -1 || !strings.Contains(s.LastExit.Description, "whole tree ended") {
		t.Fatalf("last exit %+v", s.LastExit)
	}
}

// corral restart --profile applies a named argument set; an unknown
// profile is refused with the ones that exist, and nothing changes.
func TestE2EProfiles(t *testing.T) {
	e := newEnv(t, `
[services.sd]
command = ["/bin/sh", "-c", "echo \"args:$*\"; exec sleep 1000", "sh", "--api"]
profiles = { guarded = ["--medvram-sdxl"], cpu = ["--use-cpu", "all"] }
ready = { log = "^args:", timeout = "20s" }
`)
	e.must("up")
	before := e.inspect("sd")
	out, code := e.corral("restart", "sd", "--profile", "lowvram")
	if code == 0 || !strings.Contains(out, `no profile "lowvram"`) || !strings.Contains(out, "cpu, guarded") {
		t.Fatalf("unknown profile exited %d:\n%s", code, out)
	}
	if s := e.inspect("sd"); s.Instance != before.Instance || s.State != "ready" {
		t.Fatalf("a refused profile touched the running instance: %+v", s)
	}
	e.must("restart", "sd", "--profile", "guarded", "--wait")
	s := e.inspect("sd")
	if s.Profile != "guarded" {
		t.Fatalf("profile %q", s.Profile)
	}
	if logs := e.must("logs", "sd", "-n", "1"); strings.TrimSpace(logs) != "args:--api --medvram-sdxl" {
		t.Fatalf("the guarded instance got %q", logs)
	}
}
