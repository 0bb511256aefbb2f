package proctree_test

import (
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// conformanceBackends on Windows: the job object, the only one.
func conformanceBackends() []backendCase {
	return []backendCase{{name: "job", want: proctree.JobObject}}
}

// shellCommand is cmd.exe running a webui-user.bat that runs fixture name,
// as a launcher runs webui-user.bat.
func shellCommand(t *testing.T, name string, args ...string) *exec.Cmd {
	return batCommand(t, name, args...)
}

// batCommand writes a webui-user.bat that runs fixture with args and
// returns cmd.exe running it.
func batCommand(t *testing.T, fixture string, args ...string) *exec.Cmd {
	exe, _ := os.Executable()
	line := `"` + exe + `" ` + fixture
	for _, a := range args {
		line += ` "` + a + `"`
	}
	bat := filepath.Join(tempDir(t), "webui-user.bat")
	if err := os.WriteFile(bat, []byte("@echo off\r\n"+line+"\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cmd.exe", "/d", "/c", bat)
	cmd.Env = testproc.Command(fixture).Env
	return cmd
}

// detachFixture: a process group of its own, the closest Windows has to a
// daemon's setsid().
func detachFixture(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// ignoreStops makes this process deaf to console control events (with
// signal.Ignore Go's handler would decline them and the default handler
// end the process).
func ignoreStops() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		for range ch {
		}
	}()
}

// ownGroup and killGroup: without a job, a supervisor reaches the leader.
func ownGroup(c *exec.Cmd) {}

func killGroup(t *testing.T, c *exec.Cmd) {
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
}

// stormCommand: a Go fixture starting sleepers as fast as CreateProcess
// goes (a shell loop of cmd.exe starts is slower than the stop).
// Under wine a process start costs tens of milliseconds: 20 members, and
// a bound that allows for wine.
func stormCommand(t *testing.T) (*exec.Cmd, int, time.Duration) {
	return testproc.Command("conf-storm", "60"), 20, 30 * time.Second
}

func confTempDir(t *testing.T) string { return tempDir(t) }

// tempDir is not t.TempDir: under wine its RemoveAll can fail on files a
// just-ended process had open.
func tempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "corral-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// pinSet holds handles to processes, so that checking on them reaches
// these processes and never a later one with a reused pid (wine reuses
// pids at once).
type pinSet []windows.Handle

func pinAll(t *testing.T, pids []int) pinSet {
	t.Helper()
	var ps pinSet
	for _, pid := range pids {
		h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION|windows.PROCESS_TERMINATE|windows.SYNCHRONIZE, false, uint32(pid))
		if err != nil {
			t.Fatalf("pin %d: %v", pid, err)
		}
		ps = append(ps, h)
	}
	t.Cleanup(func() {
		for _, h := range ps {
			windows.TerminateProcess(h, 1)
			windows.CloseHandle(h)
		}
	})
	return ps
}

// alive counts the pinned processes still running.
func (ps pinSet) alive() int {
	n := 0
	for _, h := range ps {
		var code uint32
		if windows.GetExitCodeProcess(h, &code) == nil && code == 259 { // STILL_ACTIVE
			n++
		}
	}
	return n
}

// assertReleased: the tree's job handle is closed.
func assertReleased(t *testing.T, tr *proctree.Tree, g proctree.Gated) {
	t.Helper()
	if !proctree.JobClosed(tr) {
		t.Fatal("the job handle is still open after the stop")
	}
}
