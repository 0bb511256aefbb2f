package bootsvc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakeManager answers a manager's commands from a table (the first key
// that prefixes the command line wins) and records them.
type fakeManager struct {
	answers []struct {
		prefix, out string
		err         error
	}
	calls  []string
	inputs map[string][]byte // command line -> the temporary file's bytes
}

func (f *fakeManager) answer(prefix, out string, err error) {
	f.answers = append(f.answers, struct {
		prefix, out string
		err         error
	}{prefix, out, err})
}

func (f *fakeManager) run(_ context.Context, argv []string) ([]byte, error) {
	line := strings.Join(argv, " ")
	f.calls = append(f.calls, line)
	for _, a := range argv {
		if strings.HasSuffix(a, ".xml") && strings.Contains(a, "corral-service-") {
			b, err := os.ReadFile(a)
			if err != nil {
				return nil, err
			}
			if f.inputs == nil {
				f.inputs = map[string][]byte{}
			}
			f.inputs[line] = b
		}
	}
	for _, a := range f.answers {
		if strings.HasPrefix(line, a.prefix) {
			return []byte(a.out), a.err
		}
	}
	return nil, nil
}

func userSystemd(t *testing.T) (Systemd, Spec) {
	dir := tempDir(t)
	s := testSpec(User)
	return Systemd{UserDir: filepath.Join(dir, "user"), SystemDir: filepath.Join(dir, "system"), Systemctl: "systemctl"}, s
}

func TestSystemdInstallLive(t *testing.T) {
	m, s := userSystemd(t)
	f := &fakeManager{}
	f.answer("systemctl --user is-system-running", "degraded\n", errors.New("exit status 1"))
	p, err := m.Install(s)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Apply(context.Background(), &out, p, false, f.run); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"systemctl --user is-system-running",
		"systemctl --user daemon-reload",
		"systemctl --user enable --now corral-webui.service",
	}
	if strings.Join(f.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("ran\n%s\nwant\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	unit, err := os.ReadFile(m.Path(s))
	if err != nil {
		t.Fatal(err)
	}
	if wantUnit, _ := SystemdUnit(s); string(unit) != wantUnit {
		t.Error("the unit written is not SystemdUnit's")
	}
	if fi, _ := os.Stat(m.Path(s)); fi.Mode().Perm() != 0o644 && runtime.GOOS != "windows" {
		t.Errorf("unit mode %v", fi.Mode())
	}
	if !strings.Contains(out.String(), "enabled and started") {
		t.Errorf("output:\n%s", &out)
	}
}

func TestSystemdInstallWithoutManager(t *testing.T) {
	m, s := userSystemd(t)
	f := &fakeManager{}
	f.answer("systemctl --user is-system-running", "offline\n", errors.New("exit status 1"))
	p, _ := m.Install(s)
	var out bytes.Buffer
	if err := Apply(context.Background(), &out, p, false, f.run); err != nil {
		t.Fatal(err)
	}
	// enable works on the files alone; daemon-reload and start need the
	// manager.
	want := "systemctl --user is-system-running\nsystemctl --user enable corral-webui.service"
	if got := strings.Join(f.calls, "\n"); got != want {
		t.Errorf("ran\n%s\nwant\n%s", got, want)
	}
	for _, w := range []string{"enabled for the next login, not started now", "is not running", "systemctl --user daemon-reload", "enable --now"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, &out)
		}
	}
	if !exists(m.Path(s)) {
		t.Error("the unit was not written")
	}
}

func TestSystemdInstallWithoutSystemctl(t *testing.T) {
	m, s := userSystemd(t)
	m.Systemctl = ""
	f := &fakeManager{}
	p, _ := m.Install(s)
	var out bytes.Buffer
	if err := Apply(context.Background(), &out, p, false, f.run); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 0 || !exists(m.Path(s)) || !strings.Contains(out.String(), "systemctl is not installed") {
		t.Errorf("calls %q, output:\n%s", f.calls, &out)
	}
}

func TestDryRunTouchesNothing(t *testing.T) {
	m, s := userSystemd(t)
	for _, scope := range []Scope{User, System} {
		s.Scope = scope
		for _, build := range []func(Spec) (Plan, error){m.Install, m.Uninstall} {
			p, err := build(s)
			if err != nil {
				t.Fatal(err)
			}
			f := &fakeManager{}
			f.answer("systemctl", "running\n", nil)
			var out bytes.Buffer
			if err := Apply(context.Background(), &out, p, true, f.run); err != nil {
				t.Fatal(err)
			}
			for _, c := range f.calls {
				if !strings.HasSuffix(c, " is-system-running") {
					t.Errorf("a dry run ran %s", c)
				}
			}
			if exists(filepath.Dir(m.UserDir)) && exists(m.Path(s)) {
				t.Errorf("a dry run wrote %s", m.Path(s))
			}
			if !strings.Contains(out.String(), "dry run: nothing was written or run") {
				t.Errorf("output:\n%s", &out)
			}
		}
	}
	// The install's dry run shows the unit and the commands.
	s.Scope = User
	p, _ := m.Install(s)
	var out bytes.Buffer
	f := &fakeManager{}
	f.answer("systemctl", "running\n", nil)
	Apply(context.Background(), &out, p, true, f.run)
	for _, w := range []string{"would write " + m.Path(s) + " (mode 0644):", "  Delegate=yes", "  KillMode=mixed",
		"would run: systemctl --user daemon-reload", "would run: systemctl --user enable --now corral-webui.service"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("dry run lacks %q:\n%s", w, &out)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(m.UserDir)); len(entries) != 0 {
		t.Errorf("a dry run created %v", entries)
	}
}

func TestSystemdUninstall(t *testing.T) {
	m, s := userSystemd(t)
	os.MkdirAll(m.UserDir, 0o755)
	os.WriteFile(m.Path(s), []byte("x"), 0o644)
	f := &fakeManager{}
	f.answer("systemctl --user is-system-running", "running\n", nil)
	f.answer("systemctl --user disable --now", "", errors.New("exit status 1")) // not loaded: tolerated
	p, _ := m.Uninstall(s)
	var out bytes.Buffer
	if err := Apply(context.Background(), &out, p, false, f.run); err != nil {
		t.Fatal(err)
	}
	want := "systemctl --user is-system-running\nsystemctl --user disable --now corral-webui.service\n" +
		"systemctl --user daemon-reload\nsystemctl --user reset-failed corral-webui.service"
	if got := strings.Join(f.calls, "\n"); got != want {
		t.Errorf("ran\n%s\nwant\n%s", got, want)
	}
	if exists(m.Path(s)) {
		t.Error("the unit is still there")
	}
}

func TestSystemdStatus(t *testing.T) {
	m, s := userSystemd(t)
	os.MkdirAll(m.UserDir, 0o755)
	os.WriteFile(m.Path(s), []byte("x"), 0o644)
	f := &fakeManager{}
	f.answer("systemctl --user is-enabled", "enabled\n", nil)
	f.answer("systemctl --user is-system-running", "running\n", nil)
	f.answer("systemctl --user show", "ActiveState=active\nSubState=running\nMainPID=4242\n", nil)
	st := m.Status(context.Background(), s, f.run)
	if !st.Installed || st.Enabled != "enabled" || st.Active != "active (running)" || st.PID != 4242 {
		t.Errorf("status = %+v", st)
	}
	f = &fakeManager{}
	f.answer("systemctl --user is-enabled", "Failed to get unit file state for corral-webui.service: No such file or directory\n", errors.New("exit status 1"))
	f.answer("systemctl --user is-system-running", "offline\n", errors.New("exit status 1"))
	os.Remove(m.Path(s))
	st = m.Status(context.Background(), s, f.run)
	if st.Installed || st.Enabled != "no (not installed)" || !strings.HasPrefix(st.Active, "unknown: ") {
		t.Errorf("status = %+v", st)
	}
}

// TestSystemdWithRealSystemctl runs the install and uninstall against
// Debian's systemctl with no manager to talk to (as in a container, or a
// session without systemd --user): enable and disable work on the unit
// files alone, so the unit is enabled for the next login.
func TestSystemdWithRealSystemctl(t *testing.T) {
	ctl, err := exec.LookPath("systemctl")
	if err != nil || runtime.GOOS != "linux" {
		t.Skip("systemctl is not installed (Debian package systemd)")
	}
	home := tempDir(t)
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	os.Unsetenv("XDG_CONFIG_HOME") // set but empty, systemctl finds no unit at all
	// No bus and no runtime directory: systemctl --user cannot reach a
	// user manager of the machine running the test, whatever runs there.
	t.Setenv("XDG_RUNTIME_DIR", tempDir(t))
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
	m := Systemd{UserDir: filepath.Join(home, ".config", "systemd", "user"), SystemDir: "/nonexistent", Systemctl: ctl}
	s := testSpec(User)
	exe, _ := os.Executable()
	s.Executable = exe
	p, err := m.Install(s)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Apply(context.Background(), &out, p, false, nil); err != nil {
		t.Fatalf("%v\n%s", err, &out)
	}
	t.Logf("install:\n%s", &out)
	link := filepath.Join(m.UserDir, "default.target.wants", s.UnitName())
	if target, err := os.Readlink(link); err != nil || target != m.Path(s) {
		t.Errorf("enable made no link %s -> %s: %q, %v", link, m.Path(s), target, err)
	}
	if st := m.Status(context.Background(), s, nil); !st.Installed || st.Enabled != "enabled" || !strings.HasPrefix(st.Active, "unknown: ") {
		t.Errorf("status = %+v", st)
	}
	out.Reset()
	p, _ = m.Uninstall(s)
	if err := Apply(context.Background(), &out, p, false, nil); err != nil {
		t.Fatalf("%v\n%s", err, &out)
	}
	t.Logf("uninstall:\n%s", &out)
	if _, err := os.Lstat(link); err == nil || exists(m.Path(s)) {
		t.Errorf("uninstall left %s or %s", link, m.Path(s))
	}
}

func TestLaunchdPlans(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("launchd's paths are Unix paths")
	}
	home := tempDir(t)
	m := Launchd{Home: home, UID: 501, Launchctl: "launchctl"}
	s := testSpec(User)
	f := &fakeManager{}
	f.answer("launchctl bootout", "Boot-out failed: 3: No such process", errors.New("exit status 3"))
	p, err := m.Install(s)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Apply(context.Background(), &out, p, false, f.run); err != nil {
		t.Fatalf("%v\n%s", err, &out)
	}
	path := filepath.Join(home, "Library", "LaunchAgents", "sh.corral.webui.plist")
	want := []string{
		"launchctl bootout gui/501/sh.corral.webui",
		"launchctl enable gui/501/sh.corral.webui",
		"launchctl bootstrap gui/501 " + path,
	}
	if strings.Join(f.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("ran\n%s\nwant\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if parsePlist(t, data)["StandardOutPath"] != filepath.Join(home, "Library", "Logs", "corral-webui.log") {
		t.Errorf("log path in\n%s", data)
	}

	f = &fakeManager{}
	f.answer("launchctl print", "gui/501/sh.corral.webui = {\n\tactive count = 1\n\tpath = "+path+"\n\tstate = running\n\tpid = 812\n\tsubsystem = 0\n}\n", nil)
	if st := m.Status(context.Background(), s, f.run); !st.Installed || st.Enabled != "loaded" || st.Active != "running" || st.PID != 812 {
		t.Errorf("status = %+v", st)
	}

	f = &fakeManager{}
	p, _ = m.Uninstall(s)
	if err := Apply(context.Background(), &out, p, false, f.run); err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.calls, "\n") != "launchctl bootout gui/501/sh.corral.webui" || exists(path) {
		t.Errorf("uninstall ran %q; plist left: %v", f.calls, exists(path))
	}

	s.Scope, s.RunAs = System, "_corral"
	p, _ = m.Install(s)
	out.Reset()
	Apply(context.Background(), &out, p, true, f.run)
	for _, w := range []string{"would write /Library/LaunchDaemons/sh.corral.webui.plist", "<key>UserName</key>",
		"/Library/Logs/corral-webui.log", "would run: launchctl bootstrap system /Library/LaunchDaemons/sh.corral.webui.plist"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("system dry run lacks %q:\n%s", w, &out)
		}
	}
}

func TestTaskSchedulerPlans(t *testing.T) {
	m := TaskScheduler{Schtasks: "schtasks"}
	s := windowsSpec()
	f := &fakeManager{}
	p, err := m.Install(s)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Apply(context.Background(), &out, p, false, f.run); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 2 || !strings.HasPrefix(f.calls[0], "schtasks /Create /TN corral-webui /XML ") || !strings.HasSuffix(f.calls[0], " /F") ||
		f.calls[1] != "schtasks /Run /TN corral-webui" {
		t.Errorf("ran %q", f.calls)
	}
	text, _ := TaskXML(s)
	if got := f.inputs[f.calls[0]]; !bytes.Equal(got, UTF16(text)) {
		t.Errorf("schtasks /XML got %d bytes, not the UTF-16 task", len(got))
	}
	for c := range f.inputs {
		if exists(strings.Fields(c)[5]) {
			t.Error("the temporary task file was not removed")
		}
	}
	if !strings.Contains(out.String(), "<LogonType>InteractiveToken</LogonType>") {
		t.Errorf("the output does not show the task:\n%s", &out)
	}

	f = &fakeManager{}
	f.answer("schtasks /Query /TN corral-webui /XML", string(UTF16(text)), nil)
	f.answer("schtasks /Query /TN corral-webui /FO CSV", "\"\\corral-webui\",\"N/A\",\"Running\"\r\n", nil)
	if st := m.Status(context.Background(), s, f.run); !st.Installed || st.Enabled != "enabled" || st.Active != "Running" {
		t.Errorf("status = %+v", st)
	}
	f = &fakeManager{}
	f.answer("schtasks /Query", "ERROR: The system cannot find the file specified.", errors.New("exit status 1"))
	if st := m.Status(context.Background(), s, f.run); st.Installed || st.Enabled != "no (not installed)" {
		t.Errorf("status = %+v", st)
	}

	f = &fakeManager{}
	f.answer("schtasks /End", "ERROR: The task is not running.", errors.New("exit status 1"))
	p, _ = m.Uninstall(s)
	if err := Apply(context.Background(), &out, p, false, f.run); err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.calls, "\n") != "schtasks /End /TN corral-webui\nschtasks /Delete /TN corral-webui /F" {
		t.Errorf("uninstall ran %q", f.calls)
	}
}

func TestApplyStopsAtAFailure(t *testing.T) {
	m, s := userSystemd(t)
	f := &fakeManager{}
	f.answer("systemctl --user is-system-running", "running", nil)
	f.answer("systemctl --user daemon-reload", "Failed to reload", errors.New("exit status 1"))
	p, _ := m.Install(s)
	var out bytes.Buffer
	err := Apply(context.Background(), &out, p, false, f.run)
	if err == nil || !strings.HasPrefix(err.Error(), "bootsvc: ") {
		t.Fatalf("err = %v", err)
	}
	if len(f.calls) != 2 {
		t.Errorf("went on after the failure: %q", f.calls)
	}
	if !strings.Contains(out.String(), "Failed to reload") {
		t.Errorf("the command's output is not shown:\n%s", &out)
	}
}
