package proctree_test

// The conformance suite: the invariants every backend must hold, run
// against every backend this platform has (conformanceBackends, in
// fixtures_<os>_test.go, with whatever else differs per OS: the shell, how a
// daemon detaches, how a process is pinned so that a check reaches it and
// never a later process with its pid). Fixtures are this test binary re-run
// (TestMain → testproc.Main) and report their own pids in files, so the
// test knows a tree's processes without asking the backend under test and
// without matching names. Where an invariant is about containment a
// negative control beside it shows what happens without it.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// killPID ends one process by pid, as a launcher that tracks one pid does.
func killPID(t *testing.T, pid int) {
	t.Helper()
	p, err := os.FindProcess(pid)
	if err == nil {
		err = p.Kill()
	}
	if err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
}

// backendCase is one backend the suite runs against.
type backendCase struct {
	name string
	opts proctree.Options
	want proctree.Mechanism
	// prepare, if set, says why the backend cannot run here ("" when it
	// can) and may complete opts for this run (with cleanups on t).
	prepare func(t *testing.T, opts *proctree.Options) string
}

// forEachBackend runs fn as a subtest per backend, skipping with the reason
// where one is unavailable.
func forEachBackend(t *testing.T, fn func(t *testing.T, bc backendCase)) {
	for _, bc := range conformanceBackends() {
		t.Run(bc.name, func(t *testing.T) {
			if bc.prepare != nil {
				if why := bc.prepare(t, &bc.opts); why != "" {
					t.Skip(why)
				}
			}
			fn(t, bc)
		})
	}
}

func init() {
	// conf-tree DIR DEPTH WIDTH: WIDTH children, each a conf-tree of
	// DEPTH-1; every process notes its pid in DIR and stays.
	testproc.Register("conf-tree", func(args []string) {
		depth, _ := strconv.Atoi(args[1])
		for i := 0; depth > 0 && i < atoi(args[2]); i++ {
			mustStart("conf-tree", testproc.Command("conf-tree", args[0], strconv.Itoa(depth-1), args[2]))
		}
		notePID(args[0], "")
		stay()
	})
	// conf-worker DIR: runs conf-daemonize to its end (the double fork's
	// middle process), notes its pid and stays.
	testproc.Register("conf-worker", func(args []string) {
		c := testproc.Command("conf-daemonize", args[0])
		if err := c.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "conf-worker:", err)
			os.Exit(1)
		}
		notePID(args[0], "")
		stay()
	})
	// conf-daemonize DIR: starts conf-daemon detached (a session of its
	// own where there are sessions), waits until it noted its pid, exits:
	// the daemon is orphaned outside the leader's group.
	testproc.Register("conf-daemonize", func(args []string) {
		c := testproc.Command("conf-daemon", args[0])
		detachFixture(c)
		mustStart("conf-daemonize", c)
		deadline := time.Now().Add(30 * time.Second)
		for len(notedPIDs(args[0], "daemon")) == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	})
	testproc.Register("conf-daemon", func(args []string) {
		notePID(args[0], "daemon")
		stay()
	})
	// conf-ignorer DIR: deaf to every stop signal (or console event).
	testproc.Register("conf-ignorer", func(args []string) {
		ignoreStops()
		notePID(args[0], "")
		stay()
	})
	// conf-storm N: starts sleepers as fast as it can, up to N.
	testproc.Register("conf-storm", func(args []string) {
		for i := 0; i < atoi(args[0]); i++ {
			testproc.Command("sleepfor", "60s").Start()
		}
		stay()
	})
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func stay() {
	for {
		time.Sleep(time.Hour)
	}
}

// mustStart starts c, retrying twice: under wine CreateProcess fails now
// and then for no reason of ours.
func mustStart(who string, c *exec.Cmd) {
	var err error
	for try := 0; try < 3; try++ {
		if err = c.Start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
		again := exec.Command(c.Path, c.Args[1:]...)
		again.Env, again.SysProcAttr = c.Env, c.SysProcAttr
		c = again
	}
	fmt.Fprintln(os.Stderr, who+":", err)
	os.Exit(1)
}

// notePID writes DIR/KIND.PID (KIND "pid" when empty), atomically enough
// for a reader that lists the directory: the name is the message.
func notePID(dir, kind string) {
	if kind == "" {
		kind = "pid"
	}
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s.%d", kind, os.Getpid())), nil, 0o644)
}

// notedPIDs lists the pids noted as kind ("" for all) in dir.
func notedPIDs(dir, kind string) []int {
	es, _ := os.ReadDir(dir)
	var out []int
	for _, e := range es {
		k, p, ok := strings.Cut(e.Name(), ".")
		if !ok || (kind != "" && k != kind) {
			continue
		}
		if pid, err := strconv.Atoi(p); err == nil {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// awaitNoted waits until n pids are noted in dir and returns them.
func awaitNoted(t *testing.T, dir string, n int) []int {
	t.Helper()
	var got []int
	eventuallyConf(t, 60*time.Second, fmt.Sprintf("%d fixtures to note their pids", n), func() bool {
		got = notedPIDs(dir, "")
		return len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("%d pids noted, want %d: %v", len(got), n, got)
	}
	return got
}

func eventuallyConf(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for d := time.Millisecond; !cond(); d = min(d*2, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(d)
	}
}

// startConf starts cmd in bc's backend. The cleanup kills whatever is left
// and fails the test if the stop fails.
func startConf(t *testing.T, bc backendCase, cmd *exec.Cmd) (*proctree.Tree, *proctree.Gated) {
	t.Helper()
	opts := bc.opts
	opts.Service = "conformance"
	gated := new(proctree.Gated)
	opts.Gate = func(g proctree.Gated) error { *gated = g; return nil }
	tr, err := proctree.Start(cmd, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if tr.Mechanism() != bc.want {
		t.Fatalf("mechanism %s, want %s", tr.Mechanism(), bc.want)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := tr.Stop(ctx, os.Kill, 0); err != nil {
			t.Errorf("cleanup stop: %v", err)
		}
	})
	return tr, gated
}

func stopConf(t *testing.T, tr *proctree.Tree, sig os.Signal, grace time.Duration) proctree.StopReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := tr.Stop(ctx, sig, grace)
	if err != nil {
		t.Fatalf("stop: %v (%+v)", err, rep)
	}
	return rep
}

func memberPIDs(t *testing.T, tr *proctree.Tree) []int {
	t.Helper()
	ps, err := tr.PIDs()
	if err != nil {
		t.Fatalf("pids: %v", err)
	}
	slices.Sort(ps)
	return ps
}

func missing(want, have []int) []int {
	var out []int
	for _, p := range want {
		if !slices.Contains(have, p) {
			out = append(out, p)
		}
	}
	return out
}

// shellTree starts a shell (sh, cmd.exe) running conf-tree 2 2: the shell
// and 1+2+4 fixtures.
func shellTree(t *testing.T, bc backendCase) (*proctree.Tree, []int, *proctree.Gated) {
	dir := confTempDir(t)
	tr, g := startConf(t, bc, shellCommand(t, "conf-tree", dir, "2", "2"))
	return tr, awaitNoted(t, dir, 7), g
}

// Every process a shell-wrapped tree starts is a member, the shell too.
func TestConformanceShellTreeDescendantsAreMembers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase) {
		tr, noted, _ := shellTree(t, bc)
		ps := pinAll(t, noted)
		have := memberPIDs(t, tr)
		if m := missing(append([]int{tr.PID()}, noted...), have); len(m) > 0 {
			t.Fatalf("not members: %v (members %v, fixtures %v, leader %d)", m, have, noted, tr.PID())
		}
		stopConf(t, tr, syscall.SIGTERM, 500*time.Millisecond)
		if n := ps.alive(); n != 0 {
			t.Fatalf("%d of the tree's %d fixtures survive its stop", n, len(noted))
		}
	})
}

// Negative control: killing only the leader's pid (what a launcher that
// tracks one pid does) leaves every descendant running; the container
// still holds them and Stop ends them.
func TestConformanceNegativeControlKillLeaderOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase) {
		tr, noted, _ := shellTree(t, bc)
		ps := pinAll(t, noted)
		killPID(t, tr.PID())
		select {
		case <-tr.Exited():
		case <-time.After(30 * time.Second):
			t.Fatal("the leader did not exit when killed")
		}
		time.Sleep(200 * time.Millisecond) // an absence: nothing to await
		if n := ps.alive(); n != len(noted) {
			t.Fatalf("killing the leader alone left %d of %d descendants; the control shows nothing", n, len(noted))
		}
		t.Logf("killing only the leader's pid leaves all %d descendants running", len(noted))
		if m := missing(noted, memberPIDs(t, tr)); len(m) > 0 {
			t.Fatalf("orphaned descendants %v are no longer members", m)
		}
		stopConf(t, tr, syscall.SIGTERM, 200*time.Millisecond)
		if n := ps.alive(); n != 0 {
			t.Fatalf("%d descendants survive the stop", n)
		}
	})
}

// A double-forked daemon in a session of its own stays a member.
func TestConformanceDetachedDaemonStaysMember(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase) {
		dir := confTempDir(t)
		tr, _ := startConf(t, bc, testproc.Command("conf-worker", dir))
		noted := awaitNoted(t, dir, 2)
		daemon := notedPIDs(dir, "daemon")
		ps := pinAll(t, noted)
		if len(daemon) != 1 {
			t.Fatalf("daemon pids %v", daemon)
		}
		have := memberPIDs(t, tr)
		if m := missing(noted, have); len(m) > 0 {
			t.Fatalf("not members: %v (members %v, daemon %d)", m, have, daemon[0])
		}
		stopConf(t, tr, syscall.SIGTERM, 500*time.Millisecond)
		if n := ps.alive(); n != 0 {
			t.Fatalf("%d of worker and daemon survive the stop", n)
		}
	})
}

// Negative control: the same chain without a tree, its leader's whole
// process group killed (what group-killing supervisors do; on Windows the
// leader alone), leaves the daemon running.
func TestConformanceNegativeControlDaemonEscapesGroupKill(t *testing.T) {
	dir := confTempDir(t)
	c := testproc.Command("conf-worker", dir)
	ownGroup(c)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	awaitNoted(t, dir, 2)
	daemon := pinAll(t, notedPIDs(dir, "daemon"))
	killGroup(t, c)
	c.Wait()
	time.Sleep(200 * time.Millisecond) // an absence: nothing to await
	if daemon.alive() != 1 {
		t.Fatal("the daemon died with its leader's group: the control shows nothing")
	}
	t.Log("killing the leader's group leaves the detached daemon running")
}

// A member deaf to the stop signal is killed after the grace period: Stop
// takes at least grace, ends within grace plus the kill, and leaves no
// process of the tree.
func TestConformanceStopKillsTermIgnorer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase) {
		dir := confTempDir(t)
		tr, _ := startConf(t, bc, testproc.Command("conf-ignorer", dir))
		ps := pinAll(t, awaitNoted(t, dir, 1))
		const grace = 500 * time.Millisecond
		began := time.Now()
		rep := stopConf(t, tr, syscall.SIGTERM, grace)
		took := time.Since(began)
		if took < grace || took > grace+10*time.Second {
			t.Fatalf("stop took %v, want grace %v plus the kill", took, grace)
		}
		if rep.Killed == 0 || rep.Signalled == 0 {
			t.Fatalf("report %+v: want the ignorer signalled, then killed", rep)
		}
		if n := ps.alive(); n != 0 {
			t.Fatal("the ignorer survives the stop")
		}
		if ms := memberPIDs(t, tr); len(ms) != 0 {
			t.Fatalf("members after stop: %v", ms)
		}
	})
}

// A tree that forks as fast as it can is killed whole.
func TestConformanceForkStormKilled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase) {
		cmd, least, within := stormCommand(t)
		tr, _ := startConf(t, bc, cmd)
		var seen []int
		eventuallyConf(t, 60*time.Second, fmt.Sprintf("the storm to reach %d processes", least), func() bool {
			seen = memberPIDs(t, tr)
			return len(seen) >= least
		})
		ps := pinAll(t, seen)
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		rep, err := tr.Stop(ctx, os.Kill, 0)
		if err != nil {
			t.Fatalf("fork storm not stopped within %v: %v", within, err)
		}
		t.Logf("fork storm: %d members killed in %v", rep.Killed, rep.Duration)
		if rep.Killed < least {
			t.Errorf("killed %d members, the storm had at least %d", rep.Killed, least)
		}
		if n := ps.alive(); n != 0 {
			t.Fatalf("%d storm processes survive", n)
		}
		if ms := memberPIDs(t, tr); len(ms) != 0 {
			t.Fatalf("members after stop: %v", ms)
		}
	})
}

// A process outside the tree, started by the test beside it with a marker
// that differs from the tree's only by a suffix, is never signalled: not by
// Signal, Freeze, Thaw nor Stop.
func TestConformanceSiblingNeverSignalled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase) {
		tr, _, _ := shellTree(t, bc)
		sigLog := filepath.Join(confTempDir(t), "signals")
		sib := testproc.Command("sleep")
		sib.Env = append(sib.Env, "CORRAL_INSTANCE="+tr.ID()+"x", testproc.SigLogEnv+"="+sigLog)
		if err := sib.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sib.Process.Kill(); sib.Wait() })
		sibling := pinAll(t, []int{sib.Process.Pid})
		if slices.Contains(memberPIDs(t, tr), sib.Process.Pid) {
			t.Fatal("the sibling is listed as a member")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := tr.Freeze(ctx); err != nil {
			t.Fatal(err)
		}
		if err := tr.Thaw(); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		stopConf(t, tr, syscall.SIGTERM, 200*time.Millisecond)
		time.Sleep(100 * time.Millisecond) // an absence: nothing to await
		if sibling.alive() != 1 {
			t.Fatal("the sibling died with the tree")
		}
		if b, _ := os.ReadFile(sigLog); len(b) > 0 {
			t.Fatalf("the sibling received signals: %s", b)
		}
	})
}

// The leader's exit status is the program's, and Done follows Exited.
func TestConformanceExitStatus(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase) {
		for _, code := range []int{0, 3} {
			tr, _ := startConf(t, bc, testproc.Command("exit", strconv.Itoa(code)))
			select {
			case <-tr.Done():
			case <-time.After(60 * time.Second):
				t.Fatal("not done")
			}
			select {
			case <-tr.Exited():
			default:
				t.Fatal("Done closed before Exited")
			}
			st, _ := tr.ExitState()
			if st == nil || st.ExitCode() != code || st.Success() != (code == 0) || st.Signaled() {
				t.Fatalf("exit %d: state %v", code, st)
			}
		}
		// Killed: not a success, and no exit code of its own.
		dir := confTempDir(t)
		tr, _ := startConf(t, bc, testproc.Command("conf-tree", dir, "0", "0"))
		awaitNoted(t, dir, 1)
		stopConf(t, tr, os.Kill, 0)
		if st, _ := tr.ExitState(); st == nil || st.Success() {
			t.Fatalf("killed leader: state %v", st)
		}
	})
}

// Stop may be called again, and from several goroutines at once: every
// call returns without error, and a stop of a stopped tree does nothing.
func TestConformanceStopIsIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase) {
		tr, noted, _ := shellTree(t, bc)
		ps := pinAll(t, noted)
		errs := make(chan error, 3)
		for range 3 {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				_, err := tr.Stop(ctx, syscall.SIGTERM, 200*time.Millisecond)
				errs <- err
			}()
		}
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatalf("concurrent stop: %v", err)
			}
		}
		rep := stopConf(t, tr, syscall.SIGTERM, 200*time.Millisecond)
		if rep.Signalled != 0 || rep.Killed != 0 || len(rep.Survivors) != 0 {
			t.Fatalf("stop of a stopped tree acted: %+v", rep)
		}
		if n := ps.alive(); n != 0 {
			t.Fatalf("%d survive", n)
		}
	})
}

// After Stop the container is released (the cgroup directory removed, the
// job handle closed) and Done is closed.
func TestConformanceStopReleasesContainer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase) {
		tr, _, gated := shellTree(t, bc)
		stopConf(t, tr, syscall.SIGTERM, 200*time.Millisecond)
		select {
		case <-tr.Done():
		default:
			t.Fatal("Stop returned before Done closed")
		}
		assertReleased(t, tr, *gated)
	})
}
