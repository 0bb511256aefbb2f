package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/cgroupv2"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/reaper"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// plantStray makes an orphan of this process, as a tree hands one to the
// daemon: a shell starts a sleeper in the background and exits, and the
// sleeper is re-parented to us, the subreaper. extraEnv goes into its
// environment (a marker, say).
func plantStray(t *testing.T, extraEnv ...string) procinfo.Stat {
	t.Helper()
	if err := reaper.EnableSubreaper(); err != nil {
		t.Skip(err)
	}
	exe, _ := os.Executable()
	sh := exec.Command("/bin/sh", "-c", `"$0" sleep >/dev/null 2>&1 & echo $!`, exe)
	sh.Env = append(testproc.Command("sleep").Env, extraEnv...)
	out, err := sh.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("shell said %q", out)
	}
	var st procinfo.Stat
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err = procinfo.ReadStat(pid)
		if err == nil && st.PPID == os.Getpid() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stray %d not re-parented to us: %+v %v", pid, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() {
		if proctree.SignalIdentity(st.PID, st.StartTicks, syscall.SIGKILL) {
			reaper.Collect(st.PID)
		}
	})
	return st
}

func alive(st procinfo.Stat) bool {
	now, err := procinfo.ReadStat(st.PID)
	return err == nil && now.StartTicks == st.StartTicks && !now.Zombie()
}

func strayByPID(ss []Stray, pid int) (Stray, bool) {
	for _, s := range ss {
		if s.PID == pid {
			return s, true
		}
	}
	return Stray{}, false
}

func ownsChildren(t *testing.T, src string, c proctree.Containment) *Supervisor {
	s, err := New(mustParse(t, src), Options{StateDir: t.TempDir(), OwnsChildren: true, Containment: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

// Orphans re-parented to the daemon that no live tree holds are named
// (status: Strays), attributed by their marker where they carry one,
// stopped with that tree, and the others at shutdown. Control: neither the
// tree's members nor the marker scan of the verification list the
// unmarked one, so without the stray scan the shutdown would say
// "verified" with it alive.
func TestStraysNamedAttributedAndStopped(t *testing.T) {
	if m, _, err := proctree.Resolve(proctree.Options{Containment: proctree.ForceCgroup}); err != nil || m != proctree.Cgroup {
		// In the process-group tier a marker carrier is a member, not a
		// stray; the cgroup tier shows a marked process outside its group.
		t.Skipf("no cgroup tier: %v", err)
	}
	s := ownsChildren(t, svcTOML("a", ""), proctree.ForceCgroup)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Ensure(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if ss := s.Strays(); len(ss) != 0 {
		t.Fatalf("strays before any was planted (a tree's leader, the reaper's protected children are none): %+v", ss)
	}
	a, _ := s.Inspect("a")
	marked := plantStray(t, "CORRAL_INSTANCE="+a.Instance)
	unknown := plantStray(t)

	ss := s.Strays()
	m, ok := strayByPID(ss, marked.PID)
	if !ok || m.Instance != a.Instance || m.Service != "a" || m.AttributedBy != "marker" {
		t.Fatalf("marked stray: %+v (found %v) in %+v", m, ok, ss)
	}
	u, ok := strayByPID(ss, unknown.PID)
	if !ok || u.Instance != "" || u.Service != "" || len(u.Cmdline) == 0 || u.Start.IsZero() {
		t.Fatalf("unmarked stray: %+v (found %v) in %+v", u, ok, ss)
	}
	// The control: what the tree and the marker scan see.
	for _, sv := range s.Survivors() {
		if sv.PID == unknown.PID {
			t.Fatal("the marker scan sees the unmarked stray: the control shows nothing")
		}
	}
	if v, _ := s.Inspect("a"); v.MemberCount != 1 {
		t.Fatalf("a's tree has %d members, want its leader alone", v.MemberCount)
	}

	st, err := s.Stop(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if alive(marked) {
		t.Fatal("the stray attributed to a survived a's stop")
	}
	if !alive(unknown) {
		t.Fatal("a's stop killed a stray nothing attributes to it")
	}
	// A stray of unknown tree may be a member that left a's group: a's
	// stop cannot say it was complete while one is about.
	if st.LastStop == nil || !strings.Contains(st.LastStop.Unverified, strconv.Itoa(unknown.PID)) {
		t.Fatalf("a's stop with a stray of unknown tree about: %+v", st.LastStop)
	}
	res := s.Shutdown(ctx)
	if alive(unknown) {
		t.Fatal("the unattributed stray survived the shutdown")
	}
	if len(res.Survivors) != 0 || len(res.Unverified) != 0 {
		t.Fatalf("shutdown %+v", res)
	}
}

// A process-group tree whose shim died can prove itself empty only through
// the stray scan: with an unattributed stray about, its stop says it is
// not verified; once none is left, it is.
func TestShimDiedStopVerifiedOnlyWithoutStrays(t *testing.T) {
	s := ownsChildren(t, svcTOML("a", ""), proctree.ForcePgroup)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	killShim := func() {
		t.Helper()
		if _, err := s.Ensure(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		tr := s.svcs["a"].Tree()
		leader, err := procinfo.ReadStat(tr.PID())
		if err != nil {
			t.Fatal(err)
		}
		syscall.Kill(leader.PPID, syscall.SIGKILL) // its shim
		deadline := time.Now().Add(10 * time.Second)
		for tr.Unprovable() != proctree.UnprovableShimDied {
			if time.Now().After(deadline) {
				t.Fatalf("the tree does not know its shim died: %q", tr.Unprovable())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	killShim()
	stray := plantStray(t)
	st, err := s.Stop(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastStop == nil || !strings.Contains(st.LastStop.Unverified, "no known tree") || !strings.Contains(st.LastStop.Unverified, strconv.Itoa(stray.PID)) {
		t.Fatalf("stop with a stray about after the shim died: %+v", st.LastStop)
	}
	proctree.SignalIdentity(stray.PID, stray.StartTicks, syscall.SIGKILL)
	for alive(stray) {
		reaper.Collect(stray.PID)
		time.Sleep(5 * time.Millisecond)
	}
	reaper.Collect(stray.PID)

	killShim()
	st, err = s.Stop(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastStop == nil || st.LastStop.Unverified != "" {
		t.Fatalf("stop after the shim died, no stray about: %+v", st.LastStop)
	}
}

// A cgroup member that moves itself out of its group (root can) is no
// member: the tree's stop neither sees nor kills it (the control:
// proctree's own report says verified, see diag's TestDoctorClaimsHoldHere).
// Once its tree is killed it is re-parented to the daemon: stopped with the
// tree if its marker names it, and if it rewrote its environment too, the
// stop says it is not verified, naming it.
func TestSelfMovedMemberStoppedOrUnverified(t *testing.T) {
	if m, _, err := proctree.Resolve(proctree.Options{Containment: proctree.ForceCgroup}); err != nil || m != proctree.Cgroup || os.Geteuid() != 0 {
		t.Skipf("needs the cgroup tier as root: %v", err)
	}
	mount := cgroupv2.Detect().Mount
	exe, _ := os.Executable()
	for _, fixture := range []string{"sleep", "wipedaemon"} {
		t.Run(fixture, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "pid")
			src := fmt.Sprintf("[services.a]\ncommand = [\"/bin/sh\", \"-c\", '\"$0\" %s \"$1\"; exit 0', %q, %q]\nenv = { CORRAL_TESTPROC = %q, GORACE = \"atexit_sleep_ms=0\" }\n", fixture, exe, pidfile, fixture)
			s := ownsChildren(t, src, proctree.ForceCgroup)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := s.Ensure(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			leader := s.svcs["a"].Tree().PID()
			var child procinfo.Stat
			deadline := time.Now().Add(10 * time.Second)
			for child.PID == 0 {
				ss, _ := procinfo.Snapshot()
				for _, st := range ss {
					if st.PPID == leader {
						child = st
					}
				}
				if fixture == "wipedaemon" {
					if b, _ := os.ReadFile(pidfile); len(b) == 0 {
						child = procinfo.Stat{} // not wiped yet
					}
				}
				if time.Now().After(deadline) {
					t.Fatal("no child of the leader")
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Cleanup(func() {
				if proctree.SignalIdentity(child.PID, child.StartTicks, syscall.SIGKILL) {
					for alive(child) {
						reaper.Collect(child.PID)
						time.Sleep(5 * time.Millisecond)
					}
					reaper.Collect(child.PID)
				}
			})
			if err := os.WriteFile(filepath.Join(mount, "cgroup.procs"), []byte(strconv.Itoa(child.PID)), 0o644); err != nil {
				t.Fatal(err)
			}
			st, err := s.Stop(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			switch fixture {
			case "sleep":
				if alive(child) {
					t.Fatal("the moved member kept its marker but outlived its tree's stop")
				}
				if st.LastStop.Unverified != "" {
					t.Fatalf("stop: %+v", st.LastStop)
				}
			case "wipedaemon":
				if !alive(child) {
					t.Fatal("the moved, wiped member died with its tree: the test shows nothing")
				}
				if !strings.Contains(st.LastStop.Unverified, strconv.Itoa(child.PID)) {
					t.Fatalf("the stop does not say it could not prove the tree empty: %+v", st.LastStop)
				}
			}
		})
	}
}
