package diag

import (
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/corral-sh/corral/internal/cgroupv2"
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
	d.Checks = append(d.Checks, Check{"journal gate (ptrace)", gateOK, "spawns are journaled before the program runs (yama ptrace_scope " + orNone(scope) + "; seccomp may still forbid it, corral then journals right after the start)"})
	pdir, perr := pidslimit.Probe()
	pidsDetail := "kernel process limits in " + pdir + " (pids.max counts threads too)"
	if perr != nil {
		pidsDetail = perr.Error() + "; limits are enforced by accounting only"
	}
	d.Checks = append(d.Checks, Check{"kernel process limits", perr == nil, pidsDetail})
	d.Checks = append(d.Checks, Check{"boot id", procinfo.BootID() != "unknown", "identities (pid, start time, boot id) survive PID reuse"})

	tierA := cgOK
	d.Invariants = []Check{
		{"1 contained from birth", true, map[bool]string{true: "CLONE_INTO_CGROUP", false: "process group + marker; a process that drops its environment and leaves group and parentage escapes"}[tierA]},
		{"2 stop is complete", true, map[bool]string{true: "cgroup.kill, verified by populated 0", false: "freeze with SIGSTOP, SIGKILL, rescan until none"}[tierA]},
		{"3 restarts never accumulate", true, "complete stop before every start"},
		{"4 tethered to corral", true, "keeper reaps when the daemon dies; the next start if the keeper died too"},
		{"5 nothing is forgotten", gateOK, "journal before exec; reap on start by cgroup, marker and identity"},
		{"6 never kill what we don't own", pidfd, "pidfd-verified signals; foreign port holders are named, never touched"},
		{"7 one instance", true, "one owner goroutine per service; one daemon per state directory"},
		{"8 runaways contained", true, map[bool]string{true: "kernel pids limit and accounting", false: "accounting: frozen within one interval"}[perr == nil]},
		{"9 verified shutdown", true, "reverse dependency order, then an independent marker scan"},
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
