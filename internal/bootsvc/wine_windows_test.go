package bootsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// underWine reports whether this Windows is wine (ntdll exports
// wine_get_version there).
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// fakeDaemon stands in for corral daemon as the SCM runs it: args are
// -c CONFIG --state-dir DIR. It serves the service protocol and records
// in DIR that it ran and that a stop reached it through its context.
func fakeDaemon(args []string) int {
	var dir string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--state-dir" {
			dir = args[i+1]
		}
	}
	if dir == "" {
		return 2
	}
	// runAsService, not RunDaemon: wine's services.exe is not what
	// svc.IsWindowsService recognises (a parent named services.exe in
	// session 0), so the detection is real Windows' part.
	err := runAsService(func(ctx context.Context) error {
		os.WriteFile(filepath.Join(dir, "running"), []byte(fmt.Sprint(os.Getpid())), 0o644)
		<-ctx.Done()
		// The verified shutdown would run here.
		return os.WriteFile(filepath.Join(dir, "stopped"), []byte("by the service's stop"), 0o644)
	})
	if err != nil {
		os.WriteFile(filepath.Join(dir, "error"), []byte(err.Error()), 0o644)
		return 1
	}
	return 0
}

func TestWindowsCommandLineSplitsBack(t *testing.T) {
	for _, args := range [][]string{
		{"-c", `C:\a b\c.toml`, "--state-dir", `C:\x y\`, "daemon"},
		{`C:\dir with space\`, `a"b`, `a\"b`, `"`, `\\server\share\x y`, "", "tab\there", `ends \`},
	} {
		line := "corral.exe " + WindowsCommandLine(args)
		got, err := windows.DecomposeCommandLine(line)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got[1:], "\x00") != strings.Join(args, "\x00") {
			t.Errorf("CommandLineToArgvW splits %s into %q, want %q", line, got[1:], args)
		}
	}
}

func taskSpec(t *testing.T) Spec {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	dir := filepath.Join(tempDir(t), "my sd & co's")
	os.MkdirAll(dir, 0o755)
	return Spec{
		Name: fmt.Sprintf("bootsvc-test-%d", os.Getpid()), Scope: User, Executable: exe,
		Config: filepath.Join(dir, "corral.toml"), StateDir: filepath.Join(dir, ".corral"), WorkingDir: dir,
		Account: u.Username, AccountSID: u.Uid,
	}
}

// TestTaskSchedulerSchtasks creates and deletes the logon task with the
// real schtasks. Under wine 8, schtasks /Create /XML parses the task
// (a malformed one is refused, checked below) and registers it, /Delete
// removes it; /Run, /End and /Query are stubs that do nothing and exit 0,
// so neither the start nor the status is checked there, and Task
// Scheduler never fires a logon trigger under wine.
func TestTaskSchedulerSchtasks(t *testing.T) {
	schtasks, err := exec.LookPath("schtasks")
	if err != nil {
		t.Skip("schtasks is not here")
	}
	m := TaskScheduler{Schtasks: schtasks}
	s := taskSpec(t)
	if !underWine() {
		// On Windows the task would start this test binary at the next
		// logon: point it at nothing that runs.
		t.Skip("not under wine: this test would register a real logon task")
	}
	p, err := m.Install(s)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Apply(context.Background(), &out, p, false, nil); err != nil {
		t.Fatalf("install: %v\n%s", err, &out)
	}
	stored := filepath.Join(os.Getenv("SystemRoot"), "System32", "Tasks", s.TaskName())
	t.Cleanup(func() { exec.Command(schtasks, "/Delete", "/TN", s.TaskName(), "/F").Run() })
	def, err := os.ReadFile(stored)
	if err != nil {
		t.Fatalf("the task was not registered (%s): %v\n%s", stored, err, &out)
	}
	// wine re-serialises what it understood: the settings corral sets
	// must have been read from the UTF-16 file.
	text := decodeText(def)
	for _, w := range []string{"<ExecutionTimeLimit>PT0S</ExecutionTimeLimit>", "<Priority>4</Priority>", "<MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>", "<DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>"} {
		if !strings.Contains(text, w) {
			t.Errorf("the registered task lacks %s:\n%s", w, text)
		}
	}
	t.Logf("registered by wine:\n%s", text)

	// The parse is real: a malformed definition is refused.
	bad := Step{Argv: []string{schtasks, "/Create", "/TN", s.TaskName() + "-bad", "/XML", "", "/F"},
		Input: UTF16(strings.Replace(mustTaskXML(t, s), "<Settings>", "<Settings><Broken>", 1)), InputArg: 5}
	if err := bad.apply(context.Background(), &out, nil); err == nil {
		exec.Command(schtasks, "/Delete", "/TN", s.TaskName()+"-bad", "/F").Run()
		t.Error("schtasks accepted a malformed task definition: the check above proves nothing")
	}

	p, _ = m.Uninstall(s)
	out.Reset()
	if err := Apply(context.Background(), &out, p, false, nil); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, &out)
	}
	if _, err := os.Stat(stored); err == nil {
		t.Errorf("the task is still registered after uninstall:\n%s", &out)
	}
}

func mustTaskXML(t *testing.T, s Spec) string {
	x, err := TaskXML(s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestWindowsService installs the system scope's service with this test
// binary as the daemon, and checks that the SCM starts it, that a stop
// reaches the daemon as its context's cancellation (its verified
// shutdown), and that uninstall removes it. Needs an administrator (wine
// runs everything as one).
func TestWindowsService(t *testing.T) {
	if !underWine() {
		if !windows.GetCurrentProcessToken().IsElevated() {
			t.Skip("creating a service needs an elevated prompt")
		}
	}
	s := taskSpec(t)
	s.Scope = System
	s.Account, s.AccountSID = "", ""
	os.MkdirAll(s.StateDir, 0o755)
	s.StopTimeout = 20 * time.Second
	var m WinService
	t.Cleanup(func() {
		withService(s.TaskName(), func(h *mgr.Service) error {
			h.Control(svc.Stop)
			return h.Delete()
		})
	})
	p, err := m.Install(s)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Apply(context.Background(), &out, p, false, nil); err != nil {
		t.Fatalf("install: %v\n%s", err, &out)
	}
	t.Logf("install:\n%s", &out)
	waitFile(t, filepath.Join(s.StateDir, "running"))
	st := m.Status(context.Background(), s, nil)
	if !st.Installed || st.Active != "running" || st.PID == 0 {
		t.Errorf("status = %+v", st)
	}

	// Installing again updates the service in place.
	out.Reset()
	p, _ = m.Install(s)
	if err := Apply(context.Background(), &out, p, false, nil); err != nil {
		t.Fatalf("second install: %v\n%s", err, &out)
	}
	if !strings.Contains(out.String(), "already running") {
		t.Errorf("second install:\n%s", &out)
	}

	out.Reset()
	p, _ = m.Uninstall(s)
	if err := Apply(context.Background(), &out, p, false, nil); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, &out)
	}
	t.Logf("uninstall:\n%s", &out)
	if b, err := os.ReadFile(filepath.Join(s.StateDir, "stopped")); err != nil {
		e, _ := os.ReadFile(filepath.Join(s.StateDir, "error"))
		t.Errorf("the stop did not reach the daemon's context: %v %s", err, e)
	} else {
		t.Logf("daemon: %s", b)
	}
	if st := m.Status(context.Background(), s, nil); st.Installed {
		t.Errorf("status after uninstall = %+v", st)
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	t.Fatalf("%s did not appear", path)
}
