package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/procinfo"
)

// freezer is a cgroup v1 freezer group of the test's own: a process frozen
// there does not die of SIGKILL until it is thawed (it sleeps in D state),
// which is how a test makes a process corral can run but not stop, or
// holds the daemon still while the kernel re-parents orphans to it.
type freezer struct {
	t   *testing.T
	dir string
}

func newFreezer(t *testing.T) *freezer {
	t.Helper()
	root := "/sys/fs/cgroup/freezer"
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test freezes processes in a cgroup v1 freezer")
	}
	if _, err := os.Stat(filepath.Join(root, "freezer.state")); err != nil {
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			t.Skipf("no cgroup v1 freezer at %s", root)
		}
	}
	dir := filepath.Join(root, fmt.Sprintf("corral-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a freezer group: %v", err)
	}
	f := &freezer{t: t, dir: dir}
	t.Cleanup(func() {
		f.set("THAWED")
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, p := range strings.Fields(string(b)) {
			os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(p), 0o644)
		}
		os.Remove(dir)
	})
	return f
}

func (f *freezer) add(pid int) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		f.t.Fatalf("freezer: add %d: %v", pid, err)
	}
}

// release moves pid back to the freezer's root group.
func (f *freezer) release(pid int) {
	os.WriteFile(filepath.Join(filepath.Dir(f.dir), "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
}

func (f *freezer) set(state string) {
	os.WriteFile(filepath.Join(f.dir, "freezer.state"), []byte(state), 0o644)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(f.dir, "freezer.state"))
		if strings.TrimSpace(string(b)) == state || time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A stray: the tree's shim is killed -9, and a daemon that setsids and
// rewrites its environment (as nginx `daemon on` does) is re-parented to
// corral afterwards, unseen by its tree (corral is held frozen while it
// happens, so no scan of the tree ever sees it as a descendant). Nothing
// says whose it is: no marker, its own group, corral as its parent.
//
// It is named by `corral status` (STRAYS); the stop of the tree it may
// belong to cannot prove the tree empty and says so (exit 6, not "0 left"
// alone); and when it cannot be killed (frozen), `corral shutdown` names it
// and exits 3. Negative control: the tree's members and the marker scan the
// verification used before the stray scan do not contain it, so without
// the stray tracking the stop and the shutdown would both have been
// reported verified with it alive.
func TestE2EStrayIsNamedUnverifiedAndASurvivor(t *testing.T) {
	fz := newFreezer(t)
	tmp := t.TempDir()
	pidfile, gofile := filepath.Join(tmp, "hidden.pid"), filepath.Join(tmp, "go")
	e := newEnv(t, fmt.Sprintf(`
[services.hidden]
shell = "while [ ! -e %s ]; do sleep 0.01; done; {exe} hiddendaemon %s; CORRAL_TESTPROC=sleep exec {exe} sleep"
env = { CORRAL_TESTPROC = "hiddendaemon", GORACE = "atexit_sleep_ms=0" }
`, gofile, pidfile))
	d, out := e.foreground("--containment", "pgroup")
	t.Cleanup(func() { fz.set("THAWED") })
	e.must("start", "hidden")
	st := e.inspect("hidden")
	leader, err := procinfo.ReadStat(st.Leader)
	if err != nil {
		t.Fatalf("leader %d: %v", st.Leader, err)
	}
	shim := leader.PPID
	if argv, _ := procinfo.Cmdline(shim); len(argv) == 0 || argv[0] != "corral-shim" {
		t.Fatalf("the leader's parent %d is no shim: %v", shim, argv)
	}
	syscall.Kill(shim, syscall.SIGKILL)
	waitFor(t, "the leader to be re-parented to corral", 10*time.Second, func() bool {
		s, err := procinfo.ReadStat(st.Leader)
		return err == nil && s.PPID == d.Process.Pid
	})
	// The tree adopts what the shim left as soon as the shim is collected
	// (a few milliseconds); what comes to corral later is a stray.
	time.Sleep(500 * time.Millisecond)

	// Held frozen, corral cannot scan while the daemon is made.
	fz.add(d.Process.Pid)
	fz.set("FROZEN")
	os.WriteFile(gofile, nil, 0o644)
	var pid int
	waitFor(t, "the hidden daemon's pid", 20*time.Second, func() bool {
		b, _ := os.ReadFile(pidfile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	waitFor(t, "the hidden daemon to be re-parented to corral", 20*time.Second, func() bool {
		s, err := procinfo.ReadStat(pid)
		return err == nil && s.PPID == d.Process.Pid
	})
	fz.set("THAWED")
	fz.release(d.Process.Pid)
	hidden := identitiesOf(t, []int{pid})
	t.Cleanup(func() {
		fz.set("THAWED")
		for _, p := range aliveOf(hidden) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})

	// The control: nothing but its parent says it is ours.
	if m := procinfo.ReadMarkers(pid); m.Instance != "" {
		t.Fatalf("the hidden daemon still carries a marker: %+v", m)
	}
	for _, m := range e.inspect("hidden").Members {
		if m.PID == pid {
			t.Fatal("the hidden daemon is a member of its tree: the control shows nothing")
		}
	}

	status, _ := e.corral("status")
	if !strings.Contains(status, "STRAYS: 1 ") || !strings.Contains(status, fmt.Sprintf("  %d ", pid)) || !strings.Contains(status, "unknown") {
		t.Fatalf("status does not name the stray %d:\n%s", pid, status)
	}

	res, code := e.corral("stop", "hidden")
	if code != exitUnverified || !strings.Contains(res, "UNVERIFIED") || !strings.Contains(res, strconv.Itoa(pid)) {
		t.Fatalf("stop with a stray of unknown tree about exited %d:\n%s", code, res)
	}
	if len(aliveOf(hidden)) == 0 {
		t.Fatal("the stop killed a stray nothing attributes to its tree")
	}

	// Now make it unkillable for corral: frozen, SIGKILL cannot end it.
	fz.add(pid)
	fz.set("FROZEN")
	res, code = e.corral("shutdown")
	if code != exitLeft || !strings.Contains(res, "NOT CLEAN") || !strings.Contains(res, fmt.Sprintf("pid %d ", pid)) || strings.Contains(res, "verified: 0") {
		t.Fatalf("shutdown with an unkillable stray exited %d:\n%s", code, res)
	}
	if !strings.Contains(readEvents(t, e), "ESCAPED") {
		t.Fatalf("no ESCAPED event in the journal; daemon output:\n%s", out)
	}
	d.Wait()
}

// A child the daemon had before it started anything is not a stray, even
// though its start time is younger than the daemon's (a start time is the
// fork's, not the exec's): `helper & exec corral daemon` must leave the
// helper alone and its stops verified. Found in review: the helper was
// listed as a stray, every stop said UNVERIFIED, and the shutdown killed it.
func TestE2EInheritedChildIsNoStray(t *testing.T) {
	e := newEnv(t, "[services.web]\ncommand = [\"/bin/sleep\", \"1000\"]\n")
	pidfile := filepath.Join(e.dir, "helper.pid")
	sh := e.command()
	sh.Path = "/bin/sh"
	sh.Args = []string{"sh", "-c", `sleep 777 & echo $! > "$1"; exec "$2" daemon`, "sh", pidfile, e.exe}
	sh.Stdout, sh.Stderr = os.Stderr, os.Stderr
	sh.WaitDelay = 5 * time.Second
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Process.Kill(); sh.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, code := e.corral("status"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon never answered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	helper, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	hst, err := procinfo.ReadStat(helper)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(helper, syscall.SIGKILL) })
	self, _ := procinfo.ReadStat(sh.Process.Pid)
	// The control: the helper is the daemon's child and, by start time,
	// younger than it, so that test alone would take it for a stray.
	if hst.PPID != sh.Process.Pid || hst.StartTicks < self.StartTicks {
		t.Fatalf("helper %+v, daemon %+v: the scenario is not what the test means", hst, self)
	}
	e.must("start", "web", "--wait")
	if out := e.must("status"); strings.Contains(out, "STRAYS") {
		t.Fatalf("the inherited helper is listed as a stray:\n%s", out)
	}
	if out, code := e.corral("stop", "web"); code != 0 || strings.Contains(out, "UNVERIFIED") {
		t.Fatalf("stop exited %d:\n%s", code, out)
	}
	out := e.must("shutdown")
	if !strings.Contains(out, "verified: 0 supervised processes remain") {
		t.Fatalf("shutdown said:\n%s", out)
	}
	sh.Wait()
	if now, err := procinfo.ReadStat(helper); err != nil || now.StartTicks != hst.StartTicks || now.Zombie() {
		t.Fatalf("the shutdown killed the daemon's inherited helper %d (%v)", helper, err)
	}
}
