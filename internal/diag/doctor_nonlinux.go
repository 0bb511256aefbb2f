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
		d.Checks = []Check{
			{"job objects", true, "members from the job's process list; emptiness from the job's completion port"},
			{"graceful stop", true, "each tree has a hidden console; stop = CTRL_BREAK on it (CTRL_C where the console lacks CTRL_BREAK, as under wine), grace, TerminateJobObject"},
		}
		d.Invariants = []Check{
			{"1 contained from birth", true, "suspended start, assign, resume"},
			{"2 stop is complete", true, "TerminateJobObject, verified by ActiveProcesses 0"},
			{"4 tethered to corral", true, "the kernel kills every job when corral's handles close"},
			{"5 nothing is forgotten", true, "spawns journaled (pid, creation time) while the leader is suspended; the next start accounts for them"},
			{"6 never kill what we don't own", true, "only job members are terminated; console events go to the tree's own console"},
			{"8 runaways contained", true, "accounting from the job's members; freeze suspends every member"},
		}
	default:
		d.Tier, d.TierReason = "none", "containment on "+runtime.GOOS+" is not implemented"
	}
	return d
}
