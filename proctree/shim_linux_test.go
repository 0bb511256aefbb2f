package proctree_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// startHidden starts the hiddendaemon fixture in the process-group tier: its
// leader setsids a child and exits; the child overwrites its environment
// memory (as setproctitle does) and stays. It returns the tree and the
// hidden daemon, after the leader's exit, before any scan of the tree (so
// that no sticky membership from an earlier scan helps).
func startHidden(t *testing.T, opts proctree.Options) (*proctree.Tree, procinfo.Stat) {
	t.Helper()
	pidfile := filepath.Join(t.TempDir(), "daemon.pid")
	opts.Containment, opts.Service = proctree.ForcePgroup, "hidden"
	tr, err := proctree.Start(testproc.Command("hiddendaemon", pidfile), opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	select {
	case <-tr.Exited():
	case <-time.After(20 * time.Second):
		t.Fatal("the hiddendaemon leader did not exit")
	}
	if st, _ := tr.ExitState(); st == nil || st.ExitCode() != 0 {
		t.Fatalf("leader's exit state %v, want exit status 0", st)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := procinfo.ReadStat(pid)
	if err != nil {
		t.Fatalf("hidden daemon %d: %v", pid, err)
	}
	if m := procinfo.Marker(pid); m != "" {
		t.Fatalf("the fixture did not hide: its environment still says %s", m)
	}
	if st.PGID == tr.PID() {
		t.Fatalf("the hidden daemon stayed in the leader's group %d", st.PGID)
	}
	return tr, st
}

func isMember(t *testing.T, tr *proctree.Tree, pid int) bool {
	t.Helper()
	ms, err := tr.Members()
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(pids(ms), pid)
}

func gone(st procinfo.Stat) bool {
	now, err := procinfo.ReadStat(st.PID)
	return err != nil || now.StartTicks != st.StartTicks || now.Zombie()
}

// A daemon that setsids and rewrites its environment is re-parented to the
// tree's shim, not to us: it stays a member, and Stop ends it.
func TestShimKeepsHiddenDaemon(t *testing.T) {
	tr, d := startHidden(t, proctree.Options{})
	if d.PPID == os.Getpid() {
		t.Fatalf("the hidden daemon %d was re-parented to us, not to a shim", d.PID)
	}
	if argv, _ := procinfo.Cmdline(d.PPID); len(argv) == 0 || argv[0] != "corral-shim" {
		t.Fatalf("the hidden daemon's parent %d is %q, want the shim", d.PPID, argv)
	}
	if !isMember(t, tr, d.PID) {
		t.Fatalf("hidden daemon %d is not a member", d.PID)
	}
	shim, err := procinfo.ReadStat(d.PPID)
	if err != nil {
		t.Fatal(err)
	}
	if isMember(t, tr, d.PPID) {
		t.Fatalf("the shim %d is listed as a member", d.PPID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := tr.Stop(ctx, syscall.SIGTERM, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Signalled != 1 {
		t.Errorf("stop signalled %d, want the hidden daemon alone: %+v", rep.Signalled, rep)
	}
	if !gone(d) {
		t.Fatalf("hidden daemon %d survived Stop", d.PID)
	}
	if !gone(shim) {
		t.Fatalf("the shim %d survived its empty tree", shim.PID)
	}
}

// Negative control: the same program without the shim escapes the tree
// (re-parented to us, out of the group, no marker).
func TestNegativeControlHiddenDaemonWithoutShim(t *testing.T) {
	tr, d := startHidden(t, proctree.Options{NoShim: true})
	defer func() {
		// It escaped to us: kill and collect it by hand.
		proctree.SignalIdentity(d.PID, d.StartTicks, syscall.SIGKILL)
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(d.PID, &ws, 0, nil); err != nil {
			t.Errorf("collect the escaped daemon %d: %v", d.PID, err)
		}
	}()
	if d.PPID != os.Getpid() {
		t.Fatalf("without a shim the hidden daemon's parent is %d, want us (%d)", d.PPID, os.Getpid())
	}
	if isMember(t, tr, d.PID) {
		t.Fatal("without a shim the hidden daemon is still found: this control shows nothing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tr.Stop(ctx, syscall.SIGKILL, 0); err != nil {
		t.Fatal(err)
	}
	if gone(d) {
		t.Fatal("Stop ended a process it could not see")
	}
	t.Logf("without the shim: Stop reported the tree empty with hidden daemon %d alive", d.PID)
}

// A shim killed mid-run hands its orphans to us: they are adopted by the
// tree, listed, stopped and counted.
func TestShimKilledOrphansStillStopped(t *testing.T) {
	tr, d := startHidden(t, proctree.Options{})
	shim := d.PPID
	if err := syscall.Kill(shim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the orphan to be re-parented to us", func() bool {
		st, err := procinfo.ReadStat(d.PID)
		return err == nil && st.PPID == os.Getpid()
	})
	eventually(t, 10*time.Second, "the orphan to be a member", func() bool { return isMember(t, tr, d.PID) })
	select {
	case <-tr.Done():
		t.Fatal("Done closed with the shim's orphan alive")
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := tr.Stop(ctx, syscall.SIGKILL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Killed != 1 {
		t.Errorf("stop killed %d, want the orphan: %+v", rep.Killed, rep)
	}
	if !gone(d) {
		t.Fatalf("orphan %d survived Stop", d.PID)
	}
}

// Killing the shim while the leader lives: the leader's real status still
// reaches ExitState (it is our child then).
func TestShimKilledLeaderStatusKept(t *testing.T) {
	tr, err := proctree.Start(testproc.Command("sleep"), proctree.Options{Containment: proctree.ForcePgroup, Service: "test"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := procinfo.ReadStat(tr.PID())
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(st.PPID, syscall.SIGKILL)
	eventually(t, 10*time.Second, "the leader to be re-parented to us", func() bool {
		now, err := procinfo.ReadStat(tr.PID())
		return err == nil && now.PPID == os.Getpid()
	})
	eventually(t, 10*time.Second, "the leader to stay a member", func() bool { return isMember(t, tr, tr.PID()) })
	syscall.Kill(tr.PID(), syscall.SIGTERM)
	select {
	case <-tr.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("the leader's exit was not seen after its shim died")
	}
	es, _ := tr.ExitState()
	if es == nil || !es.Signaled() || es.String() != "signal: terminated" {
		t.Fatalf("exit state %v, want signal: terminated", es)
	}
	select {
	case <-tr.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done did not close")
	}
}

// Under a shim the leader still starts in cmd.Dir, or in our own working
// directory when Dir is empty (the shim found by the container example's
// ./webui.sh: a shim in "/" lost the relative path).
func TestShimKeepsWorkingDirectory(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct{ dir, want string }{{"", wd}, {dir, dir}} {
		var out strings.Builder
		cmd := exec.Command("/bin/sh", "-c", "pwd -P")
		cmd.Dir, cmd.Stdout = c.dir, &out
		tr, err := proctree.Start(cmd, proctree.Options{Containment: proctree.ForcePgroup})
		if err != nil {
			t.Fatal(err)
		}
		<-tr.Done()
		tr.OutputDone()
		want, _ := filepath.EvalSymlinks(c.want)
		if got := strings.TrimSpace(out.String()); got != want {
			t.Errorf("Dir %q: the leader ran in %q, want %q", c.dir, got, want)
		}
	}
}

// BenchmarkStartShim measures what the shim costs a start in tier B: Start
// (with a gate, as corral's daemon always has one) of one /bin/sleep,
// returning once the program is released, against the same start without
// the shim. The shim's resident memory is reported as shim-rss-KiB.
func BenchmarkStartShim(b *testing.B) {
	for _, c := range []struct {
		name   string
		noShim bool
	}{{"shim", false}, {"noshim", true}} {
		b.Run(c.name, func(b *testing.B) {
			var rss int64
			for i := 0; i < b.N; i++ {
				tr, err := proctree.Start(exec.Command("/bin/sleep", "1000"), proctree.Options{
					Containment: proctree.ForcePgroup, NoShim: c.noShim, Gate: func(proctree.Gated) error { return nil }})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if st, err := procinfo.ReadStat(tr.PID()); err == nil && !c.noShim {
					if sh, err := procinfo.ReadStat(st.PPID); err == nil {
						rss += sh.RSS
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if _, err := tr.Stop(ctx, syscall.SIGKILL, 0); err != nil {
					b.Fatal(err)
				}
				cancel()
				b.StartTimer()
			}
			if !c.noShim {
				b.ReportMetric(float64(rss)/float64(b.N)/1024, "shim-rss-KiB")
			}
		})
	}
}
