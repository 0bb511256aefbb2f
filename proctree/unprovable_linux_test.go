package proctree_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// A stop report says "verified" only where the tier can prove emptiness:
// under a live shim it can (every descendant of the shim is a member); a
// tree without a shim, or whose shim died with members left, cannot (a
// descendant that setsids and rewrites its environment afterwards comes to
// us as a stray that says nothing of its tree), and the report says so.
func TestStopReportSaysWhatItCannotProve(t *testing.T) {
	stop := func(tr *proctree.Tree) proctree.StopReport {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rep, err := tr.Stop(ctx, syscall.SIGKILL, 0)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	t.Run("shim", func(t *testing.T) {
		tr, _ := startHidden(t, proctree.Options{})
		if rep := stop(tr); rep.Unverified != "" {
			t.Fatalf("a tree under a live shim is provable, report says %q", rep.Unverified)
		}
	})
	t.Run("no shim", func(t *testing.T) {
		// Control of the claim: without the shim the hidden daemon is
		// re-parented to us and is no member; the stop finds the tree empty
		// with it alive, so "verified" would be false.
		tr, d := startHidden(t, proctree.Options{NoShim: true})
		t.Cleanup(func() { syscall.Kill(d.PID, syscall.SIGKILL) })
		rep := stop(tr)
		if gone(d) {
			t.Fatal("the hidden daemon died with its tree: the control shows nothing")
		}
		if rep.Unverified != proctree.UnprovableNoShim {
			t.Fatalf("report says %q with a hidden daemon alive outside the tree", rep.Unverified)
		}
		syscall.Kill(d.PID, syscall.SIGKILL)
	})
	t.Run("shim died", func(t *testing.T) {
		tr, err := proctree.Start(testproc.Command("sleep"), proctree.Options{Containment: proctree.ForcePgroup, Service: "test"})
		if err != nil {
			t.Fatal(err)
		}
		st, err := procinfo.ReadStat(tr.PID())
		if err != nil {
			t.Fatal(err)
		}
		syscall.Kill(st.PPID, syscall.SIGKILL) // the shim
		eventually(t, 10*time.Second, "the leader to be re-parented to us", func() bool {
			st, err := procinfo.ReadStat(tr.PID())
			return err == nil && st.PPID == os.Getpid()
		})
		eventually(t, 10*time.Second, "the report to say the shim died", func() bool { return tr.Unprovable() == proctree.UnprovableShimDied })
		if rep := stop(tr); rep.Unverified != proctree.UnprovableShimDied {
			t.Fatalf("report says %q after the shim died", rep.Unverified)
		}
	})
	t.Run("cgroup", func(t *testing.T) {
		if m, _, err := proctree.Resolve(proctree.Options{Containment: proctree.ForceCgroup}); err != nil || m != proctree.Cgroup {
			t.Skipf("no cgroup tier here: %v", err)
		}
		tr, err := proctree.Start(testproc.Command("sleep"), proctree.Options{Containment: proctree.ForceCgroup, Service: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if rep := stop(tr); rep.Unverified != "" {
			t.Fatalf("the cgroup tier is provable, report says %q", rep.Unverified)
		}
	})
}

// A tree adopted from an earlier process is provable while its shim lives
// (every descendant of it is still a member); without one, what setsid'd
// and rewrote its environment went to init when that process died.
func TestAdoptedTreeProvableOnlyWithItsShim(t *testing.T) {
	for _, noShim := range []bool{false, true} {
		tr, err := proctree.Start(testproc.Command("sleep"), proctree.Options{Containment: proctree.ForcePgroup, Service: "test", NoShim: noShim})
		if err != nil {
			t.Fatal(err)
		}
		ad, err := proctree.Adopt(tr.ID(), proctree.AdoptOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if noShim {
			want = proctree.UnprovableAdopted
		}
		if got := ad.Unprovable(); got != want {
			t.Errorf("adopted (no shim: %v): %q, want %q", noShim, got, want)
		}
		ad.Release()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tr.Stop(ctx, syscall.SIGKILL, 0)
		cancel()
	}
}
