package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `corral up` ran a one-shot twice (the daemon's autostart, then up's own
// ensure). It runs once per request now: up is one request, whoever starts
// first. Control: an explicit start is another request and runs it again,
// so the count proves the test can see a second run.
func TestE2EOneShotRunsOnceUnderUp(t *testing.T) {
	marks := filepath.Join(t.TempDir(), "runs")
	e := newEnv(t, fmt.Sprintf(`
[services.migrate]
command = ["/bin/sh", "-c", "echo ran >> %s"]
restart = { policy = "never" }
`, marks))
	for i := 0; i < 3; i++ {
		e.must("up")
		if s := e.inspect("migrate"); s.State != "done" {
			t.Fatalf("state %s (%s) after up", s.State, s.Reason)
		}
	}
	runs := func() int {
		b, _ := os.ReadFile(marks)
		return strings.Count(string(b), "ran")
	}
	if n := runs(); n != 1 {
		t.Fatalf("up ×3 ran the one-shot %d times, want 1", n)
	}
	e.must("start", "migrate", "--wait")
	if n := runs(); n != 2 {
		t.Fatalf("an explicit start ran it %d times in all, want 2", n)
	}
}

// A readiness failure says why, where a user looks: up's error names the
// probe, its target and the error, and status shows the code.
func TestE2EReadinessFailureSaysWhy(t *testing.T) {
	port := freePort(t)
	e := newEnv(t, fmt.Sprintf(`
[services.api]
command = ["{exe}", "sleep"]
env = { CORRAL_TESTPROC = "sleep", GORACE = "atexit_sleep_ms=0" }
ready = { http = "http://127.0.0.1:%d/health", timeout = "500ms" }
restart = { policy = "never" }
`, port))
	out, code := e.corral("up")
	if code == 0 || !strings.Contains(out, "readiness probe failed") || !strings.Contains(out, "connection refused") ||
		!strings.Contains(out, fmt.Sprintf("127.0.0.1:%d/health", port)) {
		t.Fatalf("up exited %d:\n%s", code, out)
	}
	if strings.Contains(out, "restart policy is never\n") || strings.Contains(out, "health probe") {
		t.Fatalf("up blames the wrong thing:\n%s", out)
	}
	s := e.inspect("api")
	if s.State != "failed" || s.Code != "not_ready" {
		t.Fatalf("status %s [%s] %s", s.State, s.Code, s.Reason)
	}
}

// A profile that differs from the running instance's is refused, not
// ignored; --restart-if-different switches it; ensure takes --profile.
func TestE2EProfileOfARunningService(t *testing.T) {
	e := newEnv(t, `
[services.sd]
command = ["/bin/sh", "-c", "echo \"args:$*\"; exec sleep 1000", "sh", "--api"]
profiles = { guarded = ["--medvram-sdxl"], cpu = ["--use-cpu", "all"] }
ready = { log = "^args:", timeout = "20s" }
autostart = false
`)
	e.must("up")
	e.must("ensure", "sd", "--profile", "guarded")
	first := e.inspect("sd")
	if first.Profile != "guarded" {
		t.Fatalf("profile %q", first.Profile)
	}
	out, code := e.corral("start", "sd", "--profile", "cpu")
	if code == 0 || !strings.Contains(out, `profile "guarded"`) || !strings.Contains(out, `"cpu"`) {
		t.Fatalf("start --profile cpu on a guarded instance exited %d:\n%s", code, out)
	}
	if s := e.inspect("sd"); s.Instance != first.Instance {
		t.Fatal("a refused profile touched the running instance")
	}
	e.must("ensure", "sd", "--profile", "guarded")
	e.must("start", "sd", "--profile", "cpu", "--restart-if-different", "--wait")
	if s := e.inspect("sd"); s.Profile != "cpu" || s.Instance == first.Instance {
		t.Fatalf("after --restart-if-different: %+v", s)
	}
}
