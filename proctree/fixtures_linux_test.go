package proctree_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/cgroupv2"
	"github.com/corral-sh/corral/proctree"
)

// conformanceBackends on Linux: the cgroup tier (in corral's default place,
// and under a parent group given in Options, as a delegated subtree is),
// and the process-group tier with its shim and without.
func conformanceBackends() []backendCase {
	cgroup := func(*testing.T, *proctree.Options) string { return cgroupSkip() }
	return []backendCase{
		{name: "cgroup", want: proctree.Cgroup, opts: proctree.Options{Containment: proctree.ForceCgroup}, prepare: cgroup},
		{name: "cgroup-delegated", want: proctree.Cgroup, opts: proctree.Options{Containment: proctree.ForceCgroup}, prepare: delegatedParent},
		{name: "pgroup-shim", want: proctree.ProcessGroup, opts: proctree.Options{Containment: proctree.ForcePgroup}},
		{name: "pgroup-noshim", want: proctree.ProcessGroup, opts: proctree.Options{Containment: proctree.ForcePgroup, NoShim: true}},
	}
}

// delegatedParent gives the tree a parent group of the caller's choosing,
// as a systemd Delegate=yes unit or a user's delegated subtree does. As
// root the delegation is simulated (the group is made here); CI's
// delegated stage runs the suite as an unprivileged user inside a group
// really chowned to it.
func delegatedParent(t *testing.T, o *proctree.Options) string {
	if why := cgroupSkip(); why != "" {
		return why
	}
	base, err := proctree.DefaultCgroupParent()
	if err != nil {
		return "no default cgroup parent: " + err.Error()
	}
	dir := filepath.Join(base, fmt.Sprintf("conformance-delegated-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "cannot make a delegated parent group: " + err.Error()
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("delegated parent not removable after the test (a tree's group left in it?): %v", err)
		}
	})
	o.CgroupParent = dir
	return ""
}

// cgroupSkip says why the cgroup tier cannot run here: the probe Start
// itself uses, so that as an unprivileged user inside a subtree delegated
// to it (CI's delegated stage: a group chowned as Delegate=yes does) both
// cgroup cases run for real, and only where neither root nor a delegation
// gives the tier do they skip.
func cgroupSkip() string {
	if info := cgroupv2.Detect(); !info.Usable {
		return fmt.Sprintf("cgroup v2 tier unavailable here: %s (layout %s)", info.Reason, info.Layout)
	}
	if _, _, err := proctree.Resolve(proctree.Options{Containment: proctree.ForceCgroup}); err != nil {
		return fmt.Sprintf("cgroup v2 tier unavailable to euid %d (neither root nor a delegated subtree): %v", os.Geteuid(), err)
	}
	return ""
}

// assertReleased: the cgroup tier removes the tree's group; the process
// groups have no container beyond their members.
func assertReleased(t *testing.T, tr *proctree.Tree, g proctree.Gated) {
	t.Helper()
	if tr.Mechanism() == proctree.Cgroup {
		if g.Container == "" {
			t.Fatal("the gate named no cgroup")
		}
		if _, err := os.Stat(g.Container); !os.IsNotExist(err) {
			t.Fatalf("cgroup %s still there after the stop (%v)", g.Container, err)
		}
	}
}
