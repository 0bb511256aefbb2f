package cgroupv2

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommonAncestor(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"/sys/fs/cgroup/u/a", "/sys/fs/cgroup/u/a/corral/x", "/sys/fs/cgroup/u/a"},
		{"/sys/fs/cgroup/u/a", "/sys/fs/cgroup/u/ab/corral", "/sys/fs/cgroup/u"},
		{"/user.slice/s.scope", "/user.slice/user@1.service/app.slice", "/user.slice"},
		{"/", "/corral/x", "/"},
	} {
		if got := CommonAncestor(c.a, c.b); got != c.want {
			t.Errorf("CommonAncestor(%s, %s) = %s, want %s", c.a, c.b, got, c.want)
		}
	}
}

// A delegation is judged from the owners and modes the kernel checks. As
// root the test hands a real group to another uid the way systemd's
// Delegate=yes or an administrator does, first halfway (the directory
// only: a mkdir works, every start into it would fail with EACCES), then
// fully.
func TestCheckDelegation(t *testing.T) {
	info := Detect()
	if !info.Usable || os.Geteuid() != 0 {
		t.Skipf("needs root and a cgroup2 mount to make and chown a group (usable=%v: %s; euid %d)", info.Usable, info.Reason, os.Geteuid())
	}
	dir := filepath.Join(info.Mount, info.Self, "corral", "deleg-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Skipf("cannot create a group: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	const uid, gid = 54321, 54321
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	d, err := CheckDelegation(dir, uid, []int{gid})
	if err != nil {
		t.Fatal(err)
	}
	if d.Delegated() || strings.Join(d.Denied, ",") != "cgroup.procs,cgroup.subtree_control,cgroup.threads" {
		t.Fatalf("directory alone: delegated=%v, denied %v", d.Delegated(), d.Denied)
	}
	if !strings.Contains(d.String(), "does not let it write cgroup.procs") {
		t.Fatalf("said %q", d)
	}
	for _, f := range delegationFiles {
		if err := os.Chown(filepath.Join(dir, f), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ = CheckDelegation(dir, uid, []int{gid}); !d.Delegated() || d.Owner != uid {
		t.Fatalf("fully chowned: %+v", d)
	}
	// Another user gets nothing from it.
	if d, _ = CheckDelegation(dir, uid+1, []int{gid + 1}); d.Delegated() {
		t.Fatalf("uid %d counts as delegated: %+v", uid+1, d)
	}
	if d, _ = CheckDelegation(dir, 0, nil); d.Delegated() || !strings.Contains(d.String(), "root") {
		t.Fatalf("root: %+v %q", d, d)
	}
}
