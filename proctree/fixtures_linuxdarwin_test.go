//go:build linux || darwin

package proctree_test

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// Conformance fixtures shared by the unix backends.

// shellCommand is /bin/sh running fixture name, the shell staying its
// parent (as bash running webui.sh).
func shellCommand(t *testing.T, name string, args ...string) *exec.Cmd {
	return testproc.ShellWrapped(name, args...)
}

// detachFixture makes c a daemon's child: a session of its own.
func detachFixture(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }

func ignoreStops() { signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP) }

// ownGroup and killGroup are what a group-killing supervisor does.
func ownGroup(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

func killGroup(t *testing.T, c *exec.Cmd) {
	if err := syscall.Kill(-c.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// stormCommand forks up to 3000 sleepers as fast as sh can (they end by
// themselves); the stop must take at most 2 s once 200 run.
func stormCommand(t *testing.T) (*exec.Cmd, int, time.Duration) {
	return exec.Command("/bin/sh", "-c", `i=0; while [ $i -lt 3000 ]; do sleep 30 & i=$((i+1)); done; wait`), 200, 2 * time.Second
}

func confTempDir(t *testing.T) string { return t.TempDir() }

// pinSet holds processes by identity (pid and start time, from /proc or
// sysctl): a check reaches them and never a later process with their pid.
type pinSet []procinfo.Identity

func pinAll(t *testing.T, pids []int) pinSet {
	t.Helper()
	var ps pinSet
	for _, pid := range pids {
		st, err := procinfo.ReadStat(pid)
		if err != nil || st.Zombie() {
			t.Fatalf("pin %d: gone already (%v)", pid, err)
		}
		ps = append(ps, st.Identity())
	}
	// What a test pinned goes with it, tree or not: a negative control's
	// escaped daemon would otherwise outlive the test (by identity, never
	// a reused pid).
	t.Cleanup(func() {
		for _, id := range ps {
			if !proctree.SignalIdentity(id.PID, id.Start, syscall.SIGKILL) {
				continue
			}
			// An orphan re-parented to this test process (its subreaper)
			// would stay our zombie: no tree claims it, and later tests
			// count our zombie children.
			if st, err := procinfo.ReadStat(id.PID); err == nil && st.PPID == os.Getpid() && st.StartTicks == id.Start {
				var ws syscall.WaitStatus
				syscall.Wait4(id.PID, &ws, 0, nil)
			}
		}
	})
	return ps
}

// alive counts the pinned processes still running (a zombie is dead).
func (ps pinSet) alive() int {
	n := 0
	for _, id := range ps {
		if st, err := procinfo.ReadStat(id.PID); err == nil && st.Identity() == id && !st.Zombie() {
			n++
		}
	}
	return n
}
