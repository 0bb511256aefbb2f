package diag

import (
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/corral-sh/corral/internal/cgroupv2"
	"github.com/corral-sh/corral/internal/containment"
	"github.com/corral-sh/corral/internal/pidslimit"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/proctree"
)

// RunDoctor inspects this machine. It creates and removes a probe cgroup
// but starts nothing.
func RunDoctor() Doctor {
	d := Doctor{OS: goos()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		d.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	info := cgroupv2.Detect()
	cgOK, cgDetail := false, info.Reason
	if info.Usable {
		parent, err := proctree.DefaultCgroupParent()
		if err == nil {
			err = cgroupv2.Probe(parent)
		}
		if err == nil {
			err = cgroupv2.CanMoveInto(filepath.Join(info.Mount, info.Self), parent)
		}
		if err == nil {
			cgOK, cgDetail = true, "leaf groups under "+parent+" (CLONE_INTO_CGROUP, cgroup.kill, cgroup.freeze)"
		} else {
			cgDetail = err.Error()
		}
	}
	d.Checks = append(d.Checks, Check{"cgroup layout", info.Layout != cgroupv2.None, string(info.Layout) + " (cgroup2 at " + orNone(info.Mount) + ", own group " + orNone(info.Self) + ")"})
	d.Checks = append(d.Checks, Check{"cgroup v2 writable", cgOK, cgDetail})
	deleg, derr := cgroupv2.SelfDelegation()
	if derr == nil {
		d.Checks = append(d.Checks, Check{"cgroup delegation", deleg.UID == 0 || deleg.Delegated(), deleg.String()})
	}
	switch {
	case cgOK && os.Geteuid() != 0:
		d.Tier, d.TierReason = string(proctree.Cgroup), "a cgroup v2 subtree delegated to you: the kernel holds every descendant, without root"
	case cgOK:
		d.Tier, d.TierReason = string(proctree.Cgroup), "a writable cgroup v2 subtree: the kernel holds every descendant"
	default:
		d.Tier, d.TierReason = string(proctree.ProcessGroup), "no writable cgroup v2 subtree: process group + descendants + instance marker, with corral as subreaper"
	}
	var sub int32
	subOK := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&sub)), 0, 0, 0) == nil
	d.Checks = append(d.Checks, Check{"child subreaper", subOK, "orphans of a tree are re-parented to corral and reaped selectively"})
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	pidfd := err == nil
	if pidfd {
		unix.Close(fd)
	}
	d.Checks = append(d.Checks, Check{"pidfd", pidfd, "signals go to a pinned process, never to a reused PID"})
	yama, _ := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope")
	scope := strings.TrimSpace(string(yama))
	gateOK := scope != "3"
	d.Checks = append(d.Checks, Check{"journal gate (ptrace)", gateOK, "spawns are journaled before the program runs (yama ptrace_scope " + orNone(scope) + "; seccomp may still forbid it, corral then journals right after the start); set-uid, set-gid and file-capability programs pass it in a trampoline instead when corral lacks CAP_SYS_PTRACE (a traced execve would drop their privileges), journaled before their execve"})
	pdir, perr := pidslimit.Probe()
	pidsDetail := "kernel process limits in " + pdir + " (pids.max counts threads too)"
	if perr != nil {
		pidsDetail = perr.Error() + "; limits are enforced by accounting only"
	}
	d.Checks = append(d.Checks, Check{"kernel process limits", perr == nil, pidsDetail})
	d.Checks = append(d.Checks, Check{"boot id", procinfo.BootID() != "unknown", "identities (pid, start time, boot id) survive PID reuse"})

	d.Guarantees = newGuarantees(currentTier(subOK))
	d.Invariants = invariantsOf(d.Guarantees, d.Guarantees.Current)
	for i, c := range d.Invariants {
		switch {
		case strings.HasPrefix(c.Name, "5 ") && !gateOK:
			d.Invariants[i].Detail += " (here: ptrace is forbidden, so spawns are journaled right after the start)"
		case strings.HasPrefix(c.Name, "6 ") && !pidfd:
			d.Invariants[i].OK, d.Invariants[i].Detail = false, "no pidfd here: check, then kill(); a pid reused between them would be signalled"
		}
	}
	if !cgOK {
		if os.Geteuid() != 0 {
			d.Advice = append(d.Advice, "run corral with a delegated cgroup subtree (systemd: a user service with Delegate=yes, or systemd-run --user --scope -p Delegate=yes corral daemon) for kernel containment")
		} else {
			d.Advice = append(d.Advice, "mount cgroup2 (unified or hybrid) on a Linux ≥ 5.14 kernel for kernel containment")
		}
	}
	if perr != nil {
		d.Advice = append(d.Advice, "a writable cgroup v1 pids hierarchy (root on hybrid hosts) lets the kernel enforce process limits")
	}
	return d
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// currentTier is the column of the tier a tree started now gets (what
// proctree.Resolve says, CORRAL_CONTAINMENT honoured), and why.
func currentTier(subreaper bool) (string, string) {
	mode, err := containment.FromEnv(proctree.Auto)
	if err != nil {
		return "", err.Error()
	}
	m, fallback, err := proctree.Resolve(proctree.Options{Containment: mode})
	switch {
	case err != nil:
		return "", "no tree can start: " + err.Error()
	case m == proctree.Cgroup && os.Geteuid() == 0:
		return TierCgroupRoot, "proctree resolves cgroup-v2, running as root"
	case m == proctree.Cgroup:
		return TierCgroupDelegated, "proctree resolves cgroup-v2, not root: a delegated subtree"
	case !subreaper:
		return TierPgroupNoShim, "proctree resolves pgroup, and PR_SET_CHILD_SUBREAPER is not available"
	}
	why := "proctree resolves pgroup under a shim"
	if fallback != "" {
		why += " (" + fallback + ")"
	}
	return TierPgroupShim, why
}
