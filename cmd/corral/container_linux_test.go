package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The container example (examples/container) as a container runtime runs
// it: corral is PID 1 of a PID namespace, the cluster's probes are
// `corral health`, and the runtime's SIGTERM ends it. Its WebUI-like tree
// keeps a launcher shell alive above python and puts a worker in a
// session of its own, so stopping the leader or its process group would
// leave processes behind.
func TestE2EContainerExampleAsPID1WithHealthProbes(t *testing.T) {
	needPIDNamespaces(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed: the example's WebUI stand-in is a python script")
	}
	src := filepath.Join("..", "..", "examples", "container")
	toml, err := os.ReadFile(filepath.Join(src, "corral.toml"))
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(freePort(t))
	conf := strings.ReplaceAll(string(toml), "7860", port)
	gate := filepath.Join(t.TempDir(), "model-loaded")
	// The example's own configuration, with a free port and the gate that
	// holds "loading the model" until the test has seen it not ready.
	conf = strings.Replace(conf, "[services.webui]\n", "[services.webui]\nenv = { FAKE_WEBUI_GATE = \""+gate+"\" }\n", 1)
	e := newEnv(t, conf)
	for _, f := range []string{"webui.sh", "fake_webui.py"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.dir, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// Before the daemon: the probe says there is none, with exit 4.
	if out, code := e.corral("health", "webui"); code != exitNoDaemon || !strings.Contains(out, "start one with: corral up") {
		t.Fatalf("health with no daemon: exit %d\n%s", code, out)
	}

	d, out, init := startAsPID1(t, e)

	// Loading: alive, not ready (still checking its port, or started and
	// waiting for the model: the gate holds it in one of the two).
	loading := regexp.MustCompile(`webui: (NOT READY|ok) \((checking|starting)`)
	if o, code := e.corral("health", "webui"); code != exitFailure || !loading.MatchString(o) || !strings.Contains(o, "NOT READY") {
		t.Fatalf("readiness while loading: exit %d\n%s", code, o)
	}
	if o, code := e.corral("health", "--live"); code != exitOK || !loading.MatchString(o) || !strings.Contains(o, "webui: ok (") {
		t.Fatalf("liveness while loading: exit %d\n%s", code, o)
	}
	if o, code := e.corral("health", "nosuch"); code != exitUsage {
		t.Fatalf("health of an unknown service: exit %d\n%s", code, o)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("ensure", "webui", "--timeout", "60s")
	if o := e.must("health", "webui"); !strings.Contains(o, "webui: ok (ready") {
		t.Fatalf("readiness once ready:\n%s", o)
	}

	s := e.inspect("webui")
	if s.MemberCount < 4 {
		t.Fatalf("expected the launcher, python and two workers, got %d members: %+v", s.MemberCount, s.Members)
	}
	ids := e.instances()
	// What makes a leader-only or process-group stop leak here: members in
	// more than one session. (The daemon's pids are its namespace's; the
	// carriers of the instance marker are the host's.)
	sessions := map[int]bool{}
	for _, pid := range carriersOf(ids) {
		sessions[sessionOf(t, pid)] = true
	}
	if len(sessions) < 2 {
		t.Fatalf("the example's tree lives in %d session(s): it would not show what corral contains", len(sessions))
	}

	// The runtime's stop: SIGTERM to PID 1.
	syscall.Kill(init, syscall.SIGTERM)
	if err := d.Wait(); err != nil {
		t.Fatalf("corral as PID 1 after SIGTERM: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "verified: 0 supervised processes remain") {
		t.Fatalf("no verified shutdown:\n%s", out.String())
	}
	if left := carriersOf(ids); len(left) > 0 {
		t.Fatalf("left %v", left)
	}
}

func sessionOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	// Fields after the command's closing parenthesis: state ppid pgrp session.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	sid, _ := strconv.Atoi(f[3])
	return sid
}
