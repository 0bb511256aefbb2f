package diag

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/cgroupv2"
	"github.com/corral-sh/corral/internal/containment"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/reaper"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}

// The table has every invariant of the design in every tier, and the doctor
// marks as this machine's the tier a tree started now really gets: the
// column's mechanism is what proctree.Resolve says and what Start gives.
// `corral doctor --json` carries it.
func TestDoctorTierIsWhatStartGets(t *testing.T) {
	for _, mode := range []string{"", "pgroup", "cgroup"} {
		t.Run("containment="+mode, func(t *testing.T) {
			t.Setenv(containment.Env, mode)
			c, _ := containment.FromEnv(proctree.Auto)
			want, _, err := proctree.Resolve(proctree.Options{Containment: c})
			if err != nil {
				t.Skipf("%s does not work here: %v", mode, err)
			}
			d := RunDoctor()
			g := d.Guarantees
			if g == nil || len(g.Rows) != 10 || len(g.Tiers) != 5 {
				t.Fatalf("guarantees table %+v", g)
			}
			for _, r := range g.Rows {
				if len(r.Cells) != len(g.Tiers) {
					t.Fatalf("row %q has %d cells for %d tiers", r.Invariant, len(r.Cells), len(g.Tiers))
				}
				for i, c := range r.Cells {
					if c.Holds != HoldsOK && c.Breaks == "" {
						t.Errorf("%s in %s is %s without the case that breaks it", r.Invariant, g.Tiers[i].ID, c.Holds)
					}
				}
			}
			tier, ok := g.Tier(g.Current)
			if !ok || tier.Mechanism != string(want) {
				t.Fatalf("doctor marks tier %q (%+v), but trees resolve to %s", g.Current, tier, want)
			}
			tr, err := proctree.Start(testproc.Command("sleep"), proctree.Options{Service: "doctor", Containment: c})
			if err != nil {
				t.Fatal(err)
			}
			got := tr.Mechanism()
			stopTree(t, tr)
			if string(got) != tier.Mechanism {
				t.Fatalf("doctor marks %s (%s), a started tree is %s", g.Current, tier.Mechanism, got)
			}
			if (g.Current == TierCgroupRoot) != (os.Geteuid() == 0 && got == proctree.Cgroup) {
				t.Fatalf("doctor marks %s as euid %d with %s", g.Current, os.Geteuid(), got)
			}
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var back struct {
				Guarantees struct {
					Current string `json:"current"`
					Rows    []struct {
						Invariant string `json:"invariant"`
						Cells     []struct {
							Holds string `json:"holds"`
						} `json:"cells"`
					} `json:"rows"`
				} `json:"guarantees"`
			}
			if err := json.Unmarshal(b, &back); err != nil || back.Guarantees.Current != g.Current || len(back.Guarantees.Rows) != 10 {
				t.Fatalf("doctor's JSON does not carry the table: %v %s", err, b)
			}
			// The short list is the marked column, not hard-coded.
			for i, c := range d.Invariants {
				cell := g.Column(g.Current)[c.Name]
				if c.Name != g.Rows[i].Invariant || (cell.Holds == HoldsOK) != c.OK && !strings.HasPrefix(c.Name, "6 ") {
					t.Errorf("invariant %q says OK=%v, the table %s", c.Name, c.OK, cell.Holds)
				}
			}
		})
	}
}

func stopTree(t *testing.T, tr *proctree.Tree) proctree.StopReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := tr.Stop(ctx, syscall.SIGKILL, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Done is closed once the tree's container is released too: returning
	// before, the test process could exit with its group still there (CI's
	// leftover scan found two doctor@ groups).
	select {
	case <-tr.Done():
	case <-ctx.Done():
		t.Fatal("the stopped tree was never released")
	}
	return rep
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The doctor's claims for a tier are what happens in it, where a test can
// make the case: tier A as root says a member that moves itself out of its
// group is missed by the kernel's kill and emptiness check (partial,
// invariant 2: the tree's own stop reports it empty with the member alive;
// what corral then does is supervisor's TestSelfMovedMemberStoppedOrUnverified);
// tier B says a stop after its shim died is
// UNVERIFIED (invariant 10 ok) and the shim's death is what breaks
// containment (invariant 1 partial).
func TestDoctorClaimsHoldHere(t *testing.T) {
	t.Run("cgroup-root self-move", func(t *testing.T) {
		t.Setenv(containment.Env, "cgroup")
		if _, _, err := proctree.Resolve(proctree.Options{Containment: proctree.ForceCgroup}); err != nil || os.Geteuid() != 0 {
			t.Skipf("needs the cgroup tier as root: %v", err)
		}
		g := RunDoctor().Guarantees
		if g.Current != TierCgroupRoot {
			t.Fatalf("current tier %s", g.Current)
		}
		col := g.Column(TierCgroupRoot)
		if c := col["2 stop is complete"]; c.Holds != HoldsPartial || !strings.Contains(c.Breaks, "moves itself into another cgroup") || !strings.Contains(c.Breaks, "cgroup.kill and populated 0 miss it") {
			t.Fatalf("2: %+v", c)
		}
		if err := reaper.EnableSubreaper(); err != nil {
			t.Fatal(err)
		}
		tr, err := proctree.Start(testproc.ShellWrapped("sleep"), proctree.Options{Service: "doctor"})
		if err != nil {
			t.Fatal(err)
		}
		var child procinfo.Stat
		waitUntil(t, "the shell's child", func() bool {
			ss, _ := procinfo.Snapshot()
			for _, s := range ss {
				if s.PPID == tr.PID() {
					child = s
					return true
				}
			}
			return false
		})
		mount := cgroupv2.Detect().Mount
		if err := os.WriteFile(filepath.Join(mount, "cgroup.procs"), []byte(strconv.Itoa(child.PID)), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if proctree.SignalIdentity(child.PID, child.StartTicks, syscall.SIGKILL) {
				waitUntil(t, "the moved member to be collected", func() bool { reaper.Collect(child.PID); _, err := procinfo.ReadStat(child.PID); return err != nil })
			}
		})
		rep := stopTree(t, tr)
		now, err := procinfo.ReadStat(child.PID)
		if err != nil || now.StartTicks != child.StartTicks || now.Zombie() {
			t.Fatal("the moved member died with its tree: the doctor's partial is wrong, it holds")
		}
		if rep.Unverified != "" {
			t.Fatalf("the tree's stop said unverified (%q): the kernel's check did not miss it after all", rep.Unverified)
		}
	})
	t.Run("pgroup-shim killed", func(t *testing.T) {
		t.Setenv(containment.Env, "pgroup")
		g := RunDoctor().Guarantees
		if g.Current != TierPgroupShim {
			t.Skipf("current tier %s", g.Current)
		}
		col := g.Column(TierPgroupShim)
		if c := col["10 verified means checked"]; c.Holds != HoldsOK || !strings.Contains(c.Breaks, "UNVERIFIED") {
			t.Fatalf("10: %+v", c)
		}
		if c := col["1 contained from birth"]; c.Holds != HoldsPartial || !strings.Contains(c.Breaks, "shim killed") {
			t.Fatalf("1: %+v", c)
		}
		tr, err := proctree.Start(testproc.Command("sleep"), proctree.Options{Service: "doctor", Containment: proctree.ForcePgroup})
		if err != nil {
			t.Fatal(err)
		}
		if rep := tr.Unprovable(); rep != "" {
			t.Fatalf("a tree under a live shim is provable, it says %q", rep)
		}
		st, err := procinfo.ReadStat(tr.PID())
		if err != nil {
			t.Fatal(err)
		}
		syscall.Kill(st.PPID, syscall.SIGKILL)
		waitUntil(t, "the tree to know its shim died", func() bool { return tr.Unprovable() == proctree.UnprovableShimDied })
		if rep := stopTree(t, tr); rep.Unverified != proctree.UnprovableShimDied {
			t.Fatalf("stop after the shim died: %q", rep.Unverified)
		}
	})
}
