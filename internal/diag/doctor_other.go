//go:build !linux

package diag

import "runtime"

// RunDoctor reports what holds on this platform.
func RunDoctor() Doctor {
	d := Doctor{OS: goos(), Kernel: "n/a"}
	switch runtime.GOOS {
	case "darwin":
		d.Tier, d.TierReason = "pgroup", "process group + descendants + instance marker (sysctl); no subreaper, no pidfd"
		d.Invariants = []Check{
			{"2 stop is complete", true, "best effort: freeze, kill, rescan"},
			{"4 tethered to corral", true, "keeper and next start, best effort"},
			{"6 never kill what we don't own", true, "check-then-kill (no pidfd)"},
		}
	case "windows":
		d.Tier, d.TierReason = "job-object", "one Job Object per tree: KILL_ON_JOB_CLOSE, no breakaway, leader started suspended and assigned before it runs"
		d.Checks = []Check{{"job objects", true, "members from the job's process list; stop = CTRL_BREAK to the group, grace, TerminateJobObject"}}
		d.Invariants = []Check{
			{"1 contained from birth", true, "suspended start, assign, resume"},
			{"2 stop is complete", true, "TerminateJobObject, verified by ActiveProcesses 0"},
			{"4 tethered to corral", true, "the kernel kills every job when corral's handles close"},
			{"5 nothing is forgotten", false, "the journal and reap-on-start are not wired on Windows yet"},
		}
	default:
		d.Tier, d.TierReason = "none", "containment on "+runtime.GOOS+" is not implemented"
	}
	return d
}
