package proctree_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/cgroupv2"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// tiers runs fn once per containment tier, as a subtest or sub-benchmark.
// The cgroup tier needs root and a usable cgroup2 hierarchy; where it is
// missing the subtest says why and skips.
func tiers[T interface {
	testing.TB
	Run(string, func(T)) bool
}](tb T, fn func(T, proctree.Containment)) {
	for _, c := range []proctree.Containment{proctree.ForceCgroup, proctree.ForcePgroup} {
		tb.Run(string(c), func(tb T) {
			if c == proctree.ForceCgroup {
				skipWithoutCgroup(tb)
			}
			fn(tb, c)
		})
	}
}

func skipWithoutCgroup(t testing.TB) {
	t.Helper()
	if info := cgroupv2.Detect(); !info.Usable {
		t.Skipf("cgroup v2 tier unavailable here: %s (layout %s)", info.Reason, info.Layout)
	}
	// Root, or a subtree delegated to this user: the same probe Start uses.
	if _, _, err := proctree.Resolve(proctree.Options{Containment: proctree.ForceCgroup}); err != nil {
		t.Skipf("cgroup v2 tier unavailable here (euid %d): %v", os.Geteuid(), err)
	}
}

// start starts cmd contained and registers a cleanup that stops the tree and
// fails the test if anything carrying its marker survives.
func start(t testing.TB, cmd *exec.Cmd, c proctree.Containment) *proctree.Tree {
	t.Helper()
	tr, err := proctree.Start(cmd, proctree.Options{Containment: c, Service: "test"})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := tr.Stop(ctx, syscall.SIGKILL, 0); err != nil {
			t.Errorf("cleanup stop: %v", err)
		}
		if left := testproc.Carriers(tr.ID()); len(left) > 0 {
			t.Errorf("cleanup: %d processes of %s survive: %v", len(left), tr.ID(), left)
		}
	})
	return tr
}

// eventually polls cond until it holds or the deadline passes. Process
// creation and death have no event a test can subscribe to for arbitrary
// descendants; polling the process table with a bound is the honest wait.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for d := time.Millisecond; ; d = min(d*2, 50*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(d)
	}
}

func pids(ms []proctree.Process) []int {
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = m.PID
	}
	slices.Sort(out)
	return out
}

// waitFormed waits until the tree has n live members, none of them a
// transient (the double-fork's middle process), and they are exactly the
// processes carrying its marker.
func waitFormed(t testing.TB, tr *proctree.Tree, n int) []proctree.Process {
	t.Helper()
	var ms []proctree.Process
	var carriers []int
	eventually(t, 20*time.Second, fmt.Sprintf("%d members", n), func() bool {
		var err error
		ms, err = tr.Members()
		if err != nil {
			t.Fatalf("members: %v", err)
		}
		if len(ms) != n {
			return false
		}
		for _, m := range ms {
			if fixtureName(m.PID) == "daemonize" {
				return false
			}
		}
		carriers = testproc.Carriers(tr.ID())
		slices.Sort(carriers)
		return slices.Equal(pids(ms), carriers)
	})
	return ms
}

// webuiTree is the fixture from the issue: sh → leader → 4 workers (one
// double-forks a setsid daemon) + a respawner and its child + a TERM-ignorer.
const webuiTreeSize = testproc.WebUISize + 2 // + shell wrapper + TERM-ignorer

func startWebUI(t testing.TB, c proctree.Containment, args ...string) (*proctree.Tree, []proctree.Process) {
	t.Helper()
	cmd := testproc.ShellWrapped("webui", args...)
	started := testproc.NewLineWaiter(testproc.TreeStarted)
	cmd.Stdout = started
	tr := start(t, cmd, c)
	select {
	case <-started.Seen:
	case <-time.After(20 * time.Second):
		t.Fatal("the webui fixture did not report its tree started")
	}
	n := testproc.WebUISize + 1
	if slices.Contains(args, "--termignore") {
		n++
	}
	return tr, waitFormed(t, tr, n)
}

func assertEmpty(t testing.TB, tr *proctree.Tree, pgid int) {
	t.Helper()
	if left := testproc.Carriers(tr.ID()); len(left) > 0 {
		t.Fatalf("%d processes carrying the marker survive: %v", len(left), left)
	}
	// Orphans' zombies are re-parented and reaped asynchronously.
	eventually(t, 2*time.Second, "zombies to be reaped", func() bool {
		return len(testproc.Zombies(pgid)) == 0
	})
	select {
	case <-tr.Done():
	default:
		t.Fatal("Stop returned but Done is not closed")
	}
}

func TestStopLeavesNothing(t *testing.T) {
	tiers(t, func(t *testing.T, c proctree.Containment) {
		tr, ms := startWebUI(t, c, "--termignore")
		if got := tr.Mechanism(); (c == proctree.ForceCgroup) != (got == proctree.Cgroup) {
			t.Fatalf("Mechanism() = %s for containment %s", got, c)
		}
		// A member caught inside its execve shows no memory yet (seen under
		// CI's load: RSS 0, state R); its details come once it runs.
		detailed := func(m proctree.Process) bool { return m.RSS > 0 && len(m.Cmdline) > 0 && !m.Start.IsZero() }
		eventually(t, 5*time.Second, "every member to show its details", func() bool {
			if now, err := tr.Members(); err == nil && len(now) >= len(ms) {
				ms = now
			}
			for _, m := range ms {
				if !detailed(m) {
					return false
				}
			}
			return true
		})
		var daemon bool
		for _, m := range ms {
			if m.PGID != tr.PID() {
				daemon = true // the setsid daemon left the leader's group
			}
		}
		if !daemon {
			t.Fatal("fixture did not produce a member outside the leader's process group")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		scans := procinfo.ScanCount()
		rep, err := tr.Stop(ctx, syscall.SIGTERM, 300*time.Millisecond)
		if err != nil {
			t.Fatalf("stop: %v (report %+v)", err, rep)
		}
		// Tier A learns everything from the cgroup; reading the whole
		// process table would cost more and prove less.
		if n := procinfo.ScanCount() - scans; c == proctree.ForceCgroup && n != 0 {
			t.Errorf("cgroup-tier Stop scanned the process table %d times", n)
		}
		t.Logf("report: %+v", rep)
		if rep.Signalled != webuiTreeSize {
			t.Errorf("signalled %d members, want %d", rep.Signalled, webuiTreeSize)
		}
		if rep.Killed < 1 {
			t.Errorf("killed %d, want at least the TERM-ignorer", rep.Killed)
		}
		if len(rep.Survivors) != 0 {
			t.Errorf("survivors: %+v", rep.Survivors)
		}
		assertEmpty(t, tr, tr.PID())
		if st, _ := tr.ExitState(); st == nil {
			t.Error("leader's exit state unknown after Stop")
		}
	})
}

// The naive approaches leave processes behind; the conformance suite shows
// killing only the leader and killing the leader's group (its negative
// controls). A respawner replaces a child killed by PID: killing members one by one
// without freezing the tree first never empties it.
func TestNegativeControlKillOneByOne(t *testing.T) {
	tiers(t, func(t *testing.T, c proctree.Containment) {
		tr, ms := startWebUI(t, c)
		// Every fixture's CORRAL_TESTPROC names it.
		var respawner int
		for _, m := range ms {
			if fixtureName(m.PID) == "respawner" {
				respawner = m.PID
			}
		}
		if respawner == 0 {
			t.Fatal("no respawner in the tree")
		}
		child := childOf(ms, respawner)
		syscall.Kill(child, syscall.SIGKILL)
		eventually(t, 5*time.Second, "the respawner to replace its child", func() bool {
			ms, _ := tr.Members()
			c := childOf(ms, respawner)
			return c != 0 && c != child
		})
		t.Log("a member killed by PID was replaced by its respawner")
	})
}

func fixtureName(pid int) string {
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := strings.CutPrefix(string(kv), testproc.Env+"="); ok {
			return v
		}
	}
	return ""
}

func childOf(ms []proctree.Process, parent int) int {
	for _, m := range ms {
		if m.PPID == parent {
			return m.PID
		}
	}
	return 0
}

func TestRepeatedCyclesLeaveNothing(t *testing.T) {
	tiers(t, func(t *testing.T, c proctree.Containment) {
		cycles := 20
		if testing.Short() {
			cycles = 5
		}
		for i := 0; i < cycles; i++ {
			tr, _ := startWebUI(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := tr.Stop(ctx, syscall.SIGTERM, time.Second)
			cancel()
			if err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
			assertEmpty(t, tr, tr.PID())
		}
	})
}

// A tree that outlives its leader is found empty by the exit of its last
// member, not by polling the process table: in tier B every poll is a full
// scan, so the count of scans while it waits shows which one happened.
func TestPgroupEmptinessFollowsExits(t *testing.T) {
	tr := start(t, testproc.Command("outlive", "1500ms"), proctree.ForcePgroup)
	select {
	case <-tr.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("the leader did not exit")
	}
	before := procinfo.ScanCount()
	select {
	case <-tr.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the tree was not found empty")
	}
	// Polling at the old 0.5–50 ms back-off would take ~40 scans here.
	if scans := procinfo.ScanCount() - before; scans > 6 {
		t.Fatalf("%d process-table scans while one member lived on for 1.5 s; exits should drive them", scans)
	} else {
		t.Logf("%d scans while the tree outlived its leader", scans)
	}
}
