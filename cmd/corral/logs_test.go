package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Without a daemon, corral logs (no service) merges every service's files
// by time; -t shows the times, stderr is marked, --since bounds them, and
// -n counts across services.
func TestLogsOfAllServicesWithoutDaemon(t *testing.T) {
	cfg := writeConfig(t, twoServices)
	dir := filepath.Join(filepath.Dir(cfg), ".corral", "logs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "webui.log"), []byte(
		"2026-12-02T10:00:01.000Z out | Running on local URL\n2026-12-02T10:00:03.000Z err | Traceback\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "proxy.log"), []byte("2026-12-02T10:00:02.000Z out | proxy up\n"), 0o600)
	out, errs, code := cli(t, "-c", cfg, "logs")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	wantOutput(t, "logs", out, "webui | Running on local URL\nproxy | proxy up\nwebui ! Traceback\n")
	wantOutput(t, "logs stderr", errs, "corral: the daemon is not running; these lines are from the log files on disk ("+dir+")\n")

	out, _, _ = cli(t, "-c", cfg, "logs", "-n", "1", "-t")
	want := time.Date(2026, 12, 2, 10, 0, 3, 0, time.UTC).Local().Format("2006-01-02 15:04:05.000")
	wantOutput(t, "logs -n 1 -t", out, want+" webui ! Traceback\n")
	out, _, _ = cli(t, "-c", cfg, "logs", "--since", "2026-12-02T10:00:02Z")
	wantOutput(t, "logs --since", out, "proxy | proxy up\nwebui ! Traceback\n")
	out, _, _ = cli(t, "-c", cfg, "logs", "webui", "-n", "all")
	wantOutput(t, "logs webui", out, "Running on local URL\nTraceback\n")
	out, _, _ = cli(t, "-c", cfg, "logs", "webui", "--json", "-n", "1")
	if !strings.Contains(out, `"service":"webui"`) || !strings.Contains(out, `"stream":"stderr"`) || !strings.Contains(out, `"time":"2026-12-02T10:00:03Z"`) {
		t.Errorf("--json: %s", out)
	}
	for _, bad := range [][]string{{"logs", "-n", "many"}, {"logs", "--since", "yesterday"}} {
		if _, errs, code := cli(t, append([]string{"-c", cfg}, bad...)...); code != exitUsage {
			t.Errorf("%v exited %d: %s", bad, code, errs)
		}
	}
}
