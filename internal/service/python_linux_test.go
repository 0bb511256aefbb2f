package service

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/restart"
)

// A WebUI-like launcher (webui.bat runs python launch.py without -u; here
// a shell line does the same) whose Python prints its ready line without
// flushing and then works on: the log readiness probe matches, because
// corral sets PYTHONUNBUFFERED=1. The control, with the variable turned
// off in env (PYTHONUNBUFFERED = ""), shows the line stuck in Python's
// buffer: never ready.
func TestPythonReadyLineWithoutFlush(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on this machine:", err)
	}
	if v, set := os.LookupEnv(PythonUnbuffered); set {
		// The test's own environment must not do corral's work for it.
		os.Unsetenv(PythonUnbuffered)
		t.Cleanup(func() { os.Setenv(PythonUnbuffered, v) })
	}
	dir := t.TempDir()
	script := "import time\nprint('Running on local URL:  http://127.0.0.1:7860')\ntime.sleep(600)\n"
	if err := os.WriteFile(filepath.Join(dir, "launch.py"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := func(env ...string) *config.Service {
		return &config.Service{Name: "webui", Argv: []string{"/bin/sh", "-c", "'" + py + "' launch.py"}, Shell: true, Dir: dir, Env: env,
			Lifetime: config.LifetimeLeader, StdinNull: true,
			Ready:   config.Probe{Log: regexp.MustCompile(`Running on local URL`), Timeout: 20 * time.Second, Interval: 10 * time.Millisecond},
			Restart: restart.Policy{Mode: restart.Never, Burst: 5, Window: time.Minute},
			Stop:    config.Stop{Signal: syscall.SIGTERM, Grace: 2 * time.Second}}
	}
	stop := func(s *Service) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
		s.Close()
	}

	s := New(mk(), Deps{})
	st, err := s.Start(context.Background(), "", true)
	if err != nil || st.State != Ready {
		t.Fatalf("not ready with corral's PYTHONUNBUFFERED: %v (%s)", err, st.State)
	}
	if tail := s.Logs().Tail(0); len(tail) != 1 || !strings.HasPrefix(tail[0].Text, "Running on local URL") {
		t.Fatalf("output %v", tail)
	}
	stop(s)

	// Control: turned off, the line waits in the buffer of a process that
	// runs on. (Not ready within the timeout is the point, not a timing.)
	cfg := mk(PythonUnbuffered + "=")
	cfg.Ready.Timeout = 1500 * time.Millisecond
	s = New(cfg, Deps{})
	defer stop(s)
	st, err = s.Start(context.Background(), "", true)
	if err == nil || st.State == Ready {
		t.Fatalf("ready without PYTHONUNBUFFERED: the control does not show the buffering (%s)", st.State)
	}
	if CodeOf(err) != CodeNotReady {
		t.Fatalf("the control failed otherwise: %v", err)
	}
	if tail := s.Logs().Tail(0); len(tail) != 0 {
		t.Fatalf("the control printed %v", tail)
	}
}
