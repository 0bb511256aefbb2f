package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/procinfo"
)

func needPIDNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("PID namespaces need root here")
	}
	for _, tool := range []string{"unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (util-linux)", tool)
		}
	}
}

// childOf returns the first child of pid: the namespace's PID 1 under
// `unshare --fork`.
func childOf(t *testing.T, pid int) int {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ss, _ := procinfo.Snapshot()
		for _, s := range ss {
			if s.PPID == pid {
				return s.PID
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no child of %d", pid)
	return 0
}

// orphans makes short-lived processes inside init's PID namespace whose
// parents exit first: they are re-parented to the namespace's PID 1 and
// become its zombies when they end.
func orphans(t *testing.T, init int) {
	out, err := exec.Command("nsenter", "--target", strconv.Itoa(init), "--pid", "/bin/sh", "-c",
		`for i in 1 2 3 4 5; do /bin/sh -c "sleep 0.05 &"; done`).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v %s", err, out)
	}
}

func zombiesUnder(pid int) int {
	n := 0
	ss, _ := procinfo.Snapshot()
	for _, s := range ss {
		if s.PPID == pid && s.Zombie() {
			n++
		}
	}
	return n
}

func TestE2EPID1ReapsOrphansAndShutsDownOnSIGTERM(t *testing.T) {
	needPIDNamespaces(t)

	// Negative control: a PID 1 that does not reap keeps the zombies.
	ctl := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "sleep", "60")
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { ctl.Process.Kill(); ctl.Wait() }()
	ctlInit := childOf(t, ctl.Process.Pid)
	orphans(t, ctlInit)
	eventually := func(what string, cond func() bool) {
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	eventually("zombies under a non-reaping init", func() bool { return zombiesUnder(ctlInit) == 5 })
	syscall.Kill(ctlInit, syscall.SIGKILL)

	// corral as PID 1.
	e := newEnv(t, webuiTOML(freePort(t), ""))
	d, out, init := startAsPID1(t, e)
	e.must("ensure", "webui")
	ids := e.instances()
	orphans(t, init)
	time.Sleep(500 * time.Millisecond) // the orphans end after 50 ms
	if n := zombiesUnder(init); n != 0 {
		t.Fatalf("corral as PID 1 left %d zombies", n)
	}
	syscall.Kill(init, syscall.SIGTERM)
	if err := d.Wait(); err != nil {
		t.Fatalf("daemon as PID 1 after SIGTERM: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "verified: 0 supervised processes remain") {
		t.Fatalf("no verified shutdown:\n%s", out.String())
	}
	if left := carriersOf(ids); len(left) > 0 {
		t.Fatalf("left %v", left)
	}
}

// startAsPID1 runs e's daemon as PID 1 of a new PID namespace, as a
// container runtime does, and returns once it answers: the unshare
// command (its Wait ends with the daemon), the daemon's output, and the
// daemon's pid in this namespace. The daemon is killed at cleanup if the
// test did not end it.
func startAsPID1(t *testing.T, e *env) (*exec.Cmd, *bytes.Buffer, int) {
	t.Helper()
	d := exec.Command("unshare", "--pid", "--fork", "--mount-proc", e.exe, "daemon")
	d.Dir = e.dir
	d.Env = append(os.Environ(), asCorral+"=1", "GORACE=atexit_sleep_ms=0")
	out := &bytes.Buffer{}
	d.Stdout, d.Stderr = out, out
	d.WaitDelay = 5 * time.Second
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Kill(); d.Wait() })
	init := childOf(t, d.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := e.client().Daemon(context.Background())
		if err == nil && info.PID == 1 {
			return d, out, init
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon as PID 1 did not answer: %v\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
