package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/sys/unix"

	"github.com/corral-sh/corral/client"
)

const sleeperTOML = `
[services.sleeper]
command = ["{exe}", "sleep", "--an-argument-long-enough-to-be-cut-on-a-narrow-terminal", "--and-one-more-argument-that-needs-room"]
env = { CORRAL_TESTPROC = "sleep", GORACE = "atexit_sleep_ms=0" }
stop = { grace = "2s" }
`

// split runs the CLI and returns its stdout and stderr apart.
func (e *env) split(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	cmd := e.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("corral %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (e *env) daemonInfo() client.Daemon {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := e.client().Daemon(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// up prints what the daemon it started wrote in this run, not the tail
// of daemon.log that earlier runs left.
func TestE2EUpShowsOnlyThisRunsErrors(t *testing.T) {
	e := newEnv(t, sleeperTOML)
	state := filepath.Join(e.dir, ".corral")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(state, "daemon.log")
	stale := "level=ERROR msg=\"a failure of an earlier run, long fixed\"\n"
	if err := os.WriteFile(logPath, []byte(strings.Repeat(stale, 50)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The lock held without a socket: up starts a daemon, which cannot
	// take the lock and exits at once, saying why.
	lock := flock.New(filepath.Join(state, "daemon.lock"))
	if ok, err := lock.TryLock(); !ok || err != nil {
		t.Fatalf("lock: %v %v", ok, err)
	}
	defer lock.Unlock()
	out, errs, code := e.split("up")
	if code != exitFailure || out != "" {
		t.Errorf("up exited %d (want 1), stdout %q", code, out)
	}
	want := fmt.Sprintf("corral: the daemon exited (exit status 1) before answering; it wrote (%s):\n", logPath)
	if !strings.HasPrefix(errs, want) {
		t.Errorf("up said:\n%s\nwant it to begin with:\n%s", errs, want)
	}
	if strings.Contains(errs, "earlier run") {
		t.Errorf("up printed an earlier run's lines:\n%s", errs)
	}
	if !strings.Contains(errs, "corral: daemon: another corral daemon is running") {
		t.Errorf("up did not print this run's error:\n%s", errs)
	}
}

// up compares the file with what the daemon read and says how to apply a
// change; it does not reload by itself.
func TestE2EUpNoticesAChangedConfig(t *testing.T) {
	e := newEnv(t, sleeperTOML)
	if _, errs, code := e.split("up"); code != 0 || errs != "" {
		t.Fatalf("up exited %d: %s", code, errs)
	}
	if _, errs, code := e.split("up"); code != 0 || errs != "" {
		t.Fatalf("a second up of the same file exited %d, said %q", code, errs)
	}
	before := e.inspect("sleeper")
	e.write(sleeperTOML + "\n[services.other]\ncommand = [\"{exe}\", \"sleep\"]\nenv = { CORRAL_TESTPROC = \"sleep\" }\n")
	d := e.daemonInfo()
	out, errs, code := e.split("up")
	if code != 0 {
		t.Fatalf("up of a changed file exited %d: %s", code, errs)
	}
	wantOutput(t, "stderr", errs, fmt.Sprintf("corral: corral.toml changed since the daemon (pid %d) read it at %s; it still runs what it read then (up does not reload by itself, since a reload restarts the services whose settings changed): apply the change with: corral reload\n",
		d.PID, d.ConfigRead.Local().Format("15:04:05")))
	if !strings.HasPrefix(out, "sleeper: ready") || strings.Contains(out, "other") {
		t.Errorf("up ensured:\n%s", out)
	}
	if s := e.inspect("sleeper"); s.Instance != before.Instance {
		t.Errorf("up restarted sleeper (instance %s, was %s)", s.Instance, before.Instance)
	}
	e.must("reload")
	if d2 := e.daemonInfo(); d2.ConfigSHA256 == d.ConfigSHA256 || !d2.ConfigRead.After(d.ConfigRead) {
		t.Errorf("the reload did not change the daemon's digest: %+v then %+v", d, d2)
	}
	if out, errs, code := e.split("up"); code != 0 || errs != "" || !strings.Contains(out, "other: ready") {
		t.Errorf("up after the reload: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// Another file for the same state directory is refused.
	if err := os.WriteFile(filepath.Join(e.dir, "other.toml"), []byte("[services.x]\ncommand = [\"true\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code = e.split("-c", "other.toml", "up")
	if code != exitFailure {
		t.Errorf("up of another file exited %d", code)
	}
	cfg := filepath.Join(e.dir, "corral.toml")
	wantOutput(t, "another file", errs, fmt.Sprintf("corral: the daemon of %s (pid %d) runs %s, not %s; nothing was started: stop it first (corral -c %s shutdown), or give other.toml a state directory of its own (--state-dir)\n",
		filepath.Join(e.dir, ".corral"), d.PID, cfg, filepath.Join(e.dir, "other.toml"), cfg))
}

// up --exit-with ties the daemon it starts to a process, and refuses a
// running daemon tied to another.
func TestE2EUpExitWith(t *testing.T) {
	e := newEnv(t, sleeperTOML)
	app := exec.Command("sleep", "60")
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	defer app.Process.Kill()
	pid := app.Process.Pid
	if _, errs, code := e.split("up", "--exit-with", fmt.Sprint(pid)); code != 0 {
		t.Fatalf("up --exit-with exited %d: %s", code, errs)
	}
	d := e.daemonInfo()
	if d.ExitWith != pid {
		t.Fatalf("the daemon is tied to %d, want %d", d.ExitWith, pid)
	}
	if _, errs, code := e.split("up", "--exit-with", fmt.Sprint(pid)); code != 0 || errs != "" {
		t.Errorf("up --exit-with the same pid: exit %d, %s", code, errs)
	}
	_, errs, code := e.split("up", "--exit-with", fmt.Sprint(os.Getpid()))
	if code != exitFailure {
		t.Errorf("up --exit-with another pid exited %d", code)
	}
	wantOutput(t, "another pid", errs, fmt.Sprintf("corral: the daemon (pid %d) already runs, tied to process %d: it would not shut down when process %d exits, so nothing was started: stop it first (corral shutdown), or leave out --exit-with\n",
		d.PID, pid, os.Getpid()))

	// The app exits: the daemon shuts down, verified, and goes.
	app.Process.Kill()
	app.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := e.client().Daemon(ctx)
		cancel()
		if errors.Is(err, client.ErrNoDaemon) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon still answers 20s after its --exit-with process exited: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openPTY returns a pseudo-terminal pair whose window is cols wide.
func openPTY(t *testing.T, cols int) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pts: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: uint16(cols)}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// On a terminal, status fits its width (command lines cut, "…"); to a
// pipe it prints them whole.
func TestE2EStatusFitsTheTerminal(t *testing.T) {
	e := newEnv(t, sleeperTOML)
	e.must("up")
	master, slave := openPTY(t, 60)
	defer master.Close()
	cmd := e.command("status", "sleeper")
	cmd.Stdout = slave
	var errb bytes.Buffer
	cmd.Stderr = &errb
	read := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once the terminal's last user closes it
		read <- b
	}()
	if err := cmd.Run(); err != nil {
		t.Fatalf("status on a terminal: %v: %s", err, errb.String())
	}
	slave.Close()
	tty := strings.ReplaceAll(string(<-read), "\r\n", "\n")
	var cut bool
	for _, l := range strings.Split(strings.TrimSuffix(tty, "\n"), "\n") {
		if n := len([]rune(l)); n > 60 {
			t.Errorf("a %d-column line on a 60-column terminal: %q", n, l)
		}
		cut = cut || strings.HasSuffix(strings.TrimRight(l, " MiBK0123456789."), "…")
	}
	if !cut || !strings.Contains(tty, "sleeper: ready") {
		t.Errorf("no command line was cut to fit:\n%s", tty)
	}
	// The list too.
	master2, slave2 := openPTY(t, 40)
	defer master2.Close()
	list := e.command("status")
	list.Stdout = slave2
	go func() { b, _ := io.ReadAll(master2); read <- b }()
	if err := list.Run(); err != nil {
		t.Fatal(err)
	}
	slave2.Close()
	for _, l := range strings.Split(strings.TrimSuffix(strings.ReplaceAll(string(<-read), "\r\n", "\n"), "\n"), "\n") {
		if n := len([]rune(l)); n > 40 {
			t.Errorf("a %d-column line of the list on a 40-column terminal: %q", n, l)
		}
	}
	piped := e.must("status", "sleeper")
	if !strings.Contains(piped, "--and-one-more-argument-that-needs-room") {
		t.Errorf("to a pipe, status cut a command line:\n%s", piped)
	}
}
