package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bootEnv runs the corral binary (this test binary) for corral service
// in a home of its own, where no systemd user manager can be reached: the
// machine's own is never touched, whatever runs on it.
type bootEnv struct {
	t    *testing.T
	home string
	dir  string // holds corral.toml; its name has a space
	exe  string
	env  []string
}

func newBootEnv(t *testing.T) *bootEnv {
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("systemctl is not installed (Debian package systemd)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b := &bootEnv{t: t, home: t.TempDir(), exe: exe}
	b.dir = filepath.Join(t.TempDir(), "my sd")
	os.MkdirAll(b.dir, 0o755)
	os.WriteFile(filepath.Join(b.dir, "corral.toml"), []byte("[corral]\nshutdown_timeout = \"2m\"\n\n[services.web]\ncommand = [\"sleep\", \"1000\"]\n"), 0o644)
	runtimeDir := t.TempDir()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "HOME" && k != "XDG_CONFIG_HOME" && k != "XDG_RUNTIME_DIR" && k != "DBUS_SESSION_BUS_ADDRESS" {
			b.env = append(b.env, kv)
		}
	}
	b.env = append(b.env, asCorral+"=1", "HOME="+b.home, "XDG_RUNTIME_DIR="+runtimeDir, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent")
	return b
}

func (b *bootEnv) corral(args ...string) (string, int) {
	cmd := exec.Command(b.exe, args...)
	cmd.Dir = b.dir
	cmd.Env = b.env
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		b.t.Fatal(err)
	}
	return string(out), code
}

func TestServiceInstallUninstall(t *testing.T) {
	b := newBootEnv(t)
	unitPath := filepath.Join(b.home, ".config", "systemd", "user", "corral-my-sd.service")

	// A relative -c is made absolute; the dry run writes nothing.
	out, code := b.corral("-c", "corral.toml", "service", "install", "--dry-run", "--binary", b.exe)
	if code != 0 {
		t.Fatalf("dry run exited %d:\n%s", code, out)
	}
	cfg := filepath.Join(b.dir, "corral.toml")
	for _, w := range []string{
		"would write " + unitPath,
		`ExecStart=` + b.exe + ` -c "` + cfg + `" --state-dir "` + filepath.Join(b.dir, ".corral") + `" daemon`,
		"TimeoutStopSec=150s", // shutdown_timeout 2m + 30 s
		"Delegate=yes", "KillMode=mixed", "dry run: nothing was written or run",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("dry run lacks %q:\n%s", w, out)
		}
	}
	if _, err := os.Stat(unitPath); err == nil {
		t.Fatal("the dry run wrote the unit")
	}

	out, code = b.corral("-c", "corral.toml", "service", "install", "--binary", b.exe, "--env", "CORRAL_TEST_AS_CORRAL=1")
	if code != 0 {
		t.Fatalf("install exited %d:\n%s", code, out)
	}
	t.Logf("install:\n%s", out)
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nEnvironment=\"CORRAL_TEST_AS_CORRAL=1\"\n") {
		t.Errorf("--env is not in the unit:\n%s", unit)
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		// The unit as installed, with the binary it names.
		cmd := exec.Command(sa, "--user", "verify", unitPath)
		cmd.Env = b.env
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze --user verify: %v\n%s", err, out)
		}
	}
	if _, err := os.Lstat(filepath.Join(b.home, ".config", "systemd", "user", "default.target.wants", "corral-my-sd.service")); err != nil {
		t.Errorf("the unit is not enabled: %v", err)
	}

	out, code = b.corral("-c", "corral.toml", "--json", "service", "status")
	var st struct {
		Installed bool   `json:"installed"`
		Enabled   string `json:"enabled"`
		Path      string `json:"path"`
		Scope     string `json:"scope"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("status --json (exit %d): %v\n%s", code, err, out)
	}
	if !st.Installed || st.Enabled != "enabled" || st.Path != unitPath || st.Scope != "user" {
		t.Errorf("status = %+v", st)
	}

	out, code = b.corral("-c", "corral.toml", "service", "uninstall")
	if code != 0 {
		t.Fatalf("uninstall exited %d:\n%s", code, out)
	}
	if _, err := os.Stat(unitPath); err == nil {
		t.Error("uninstall left the unit")
	}
	out, _ = b.corral("-c", "corral.toml", "service", "status")
	if !strings.Contains(out, "(not installed)") {
		t.Errorf("status after uninstall:\n%s", out)
	}
}

func TestServiceUsageErrors(t *testing.T) {
	b := newBootEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "install", "--user", "--system", "--dry-run", "--binary", b.exe}, "exclude each other"},
		{[]string{"-c", "missing.toml", "service", "install", "--dry-run", "--binary", b.exe}, "no configuration file"},
		{[]string{"service", "install", "--dry-run", "--binary", "/nonexistent/corral"}, "not a file"},
		{[]string{"service", "install", "--dry-run", "--binary", b.exe, "--name", "a/b"}, "name"},
	} {
		out, code := b.corral(tc.args...)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("corral %v exited %d, want an error saying %q:\n%s", tc.args, code, tc.want, out)
		}
	}
	if out, code := b.corral("service", "install", "--user", "--system"); code != exitUsage {
		t.Errorf("--user --system exited %d, want %d:\n%s", code, exitUsage, out)
	}
}
