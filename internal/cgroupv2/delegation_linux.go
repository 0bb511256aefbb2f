package cgroupv2

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The files a delegation hands over with a group's directory (the kernel's
// cgroup-v2.rst, "Delegation Containment"; systemd's Delegate=yes chowns
// the same set). cgroup.procs is the one that matters most: the kernel
// lets a process be moved (or cloned, CLONE_INTO_CGROUP) into a group only
// by someone who may write cgroup.procs of the common ancestor of where it
// is and where it goes.
var delegationFiles = []string{"cgroup.procs", "cgroup.subtree_control", "cgroup.threads"}

// Delegation says whether a user may run trees below a group on their own.
type Delegation struct {
	// Dir is the group's absolute directory.
	Dir string
	// Owner is the uid owning Dir.
	Owner int
	// UID is the user the answer is for.
	UID int
	// Denied lists what this user may not write: "the directory" and the
	// delegation files. Empty: everything a delegatee needs is writable.
	Denied []string
}

// Delegated reports whether the group is the user's own: not root, and
// every delegation file and the directory writable.
func (d Delegation) Delegated() bool { return d.UID != 0 && len(d.Denied) == 0 }

// String says in one sentence what was found, for doctor.
func (d Delegation) String() string {
	switch {
	case d.UID == 0:
		return "running as root: every group is writable"
	case len(d.Denied) == 0:
		return fmt.Sprintf("delegated to uid %d (owns %s and its %s)", d.UID, d.Dir, strings.Join(delegationFiles, ", "))
	}
	return fmt.Sprintf("not delegated to uid %d: %s (owned by uid %d) does not let it write %s", d.UID, d.Dir, d.Owner, strings.Join(d.Denied, ", "))
}

// CheckDelegation inspects dir for the user uid with groups gids (the
// primary one included). It reads owners and modes only: cgroupfs has no
// ACLs, so the mode bits are the kernel's whole permission check, which
// lets root check on behalf of another user (tests) without becoming it.
func CheckDelegation(dir string, uid int, gids []int) (Delegation, error) {
	d := Delegation{Dir: dir, UID: uid, Owner: -1}
	st, err := os.Stat(dir)
	if err != nil {
		return d, fmt.Errorf("cgroupv2: %w", err)
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		d.Owner = int(s.Uid)
	}
	if uid == 0 {
		return d, nil
	}
	if !writable(st, uid, gids) {
		d.Denied = append(d.Denied, "the directory")
	}
	for _, f := range delegationFiles {
		fst, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			if os.IsNotExist(err) {
				continue // the root group has no cgroup.threads on old kernels
			}
			return d, fmt.Errorf("cgroupv2: %w", err)
		}
		if !writable(fst, uid, gids) {
			d.Denied = append(d.Denied, f)
		}
	}
	return d, nil
}

// SelfDelegation checks this process's own group for this process's user.
func SelfDelegation() (Delegation, error) {
	info := Detect()
	if !info.Usable {
		return Delegation{UID: os.Geteuid()}, fmt.Errorf("cgroupv2: %s", info.Reason)
	}
	gids, _ := os.Getgroups()
	gids = append(gids, os.Getegid())
	return CheckDelegation(filepath.Join(info.Mount, info.Self), os.Geteuid(), gids)
}

func writable(st os.FileInfo, uid int, gids []int) bool {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	mode := st.Mode().Perm()
	switch {
	case int(s.Uid) == uid:
		return mode&0o200 != 0
	case slices.Contains(gids, int(s.Gid)):
		return mode&0o020 != 0
	}
	return mode&0o002 != 0
}

// CommonAncestor is the deepest group containing both a and b (paths
// inside the hierarchy or absolute directories, both of one kind): the
// group whose cgroup.procs decides whether a process may move from a to b.
func CommonAncestor(a, b string) string {
	as := strings.Split(filepath.Clean(a), "/")
	bs := strings.Split(filepath.Clean(b), "/")
	n := 0
	for n < len(as) && n < len(bs) && as[n] == bs[n] {
		n++
	}
	if n <= 1 {
		return "/"
	}
	return strings.Join(as[:n], "/")
}

// CanMoveInto checks that this process may clone or move processes from
// group dir from into group dir to (absolute directories): it must be
// able to write cgroup.procs of their common ancestor. A directory the
// user may create groups in is not enough; a half-done delegation (the
// directory chowned, cgroup.procs not) passes a mkdir and fails every
// start with EACCES, so corral refuses the tier up front instead.
func CanMoveInto(from, to string) error {
	anc := CommonAncestor(from, to)
	if err := unix.Access(filepath.Join(anc, "cgroup.procs"), unix.W_OK); err != nil {
		return fmt.Errorf("cgroupv2: %s/cgroup.procs is not writable (%w): processes cannot be moved from %s into %s; delegate %s to this user (chown it and its %s)",
			anc, err, from, to, anc, strings.Join(delegationFiles, ", "))
	}
	return nil
}
