//go:build !linux

package diag

import "runtime"

// RunDoctor reports what holds on this platform.
func RunDoctor() Doctor {
	d := Doctor{OS: goos(), Kernel: "n/a"}
	switch runtime.GOOS {
	case "darwin":
		d.Tier, d.TierReason = "pgroup", "process group + descendants + instance marker (sysctl); no subreaper, no pidfd"
		d.Guarantees = newGuarantees(TierPgroupNoShim, "macOS: process groups, no subreaper, no shim")
		d.Invariants = invariantsOf(d.Guarantees, TierPgroupNoShim)
	case "windows":
		d.Tier, d.TierReason = "job-object", "one Job Object per tree: KILL_ON_JOB_CLOSE, no breakaway, leader started suspended and assigned before it runs"
		d.Checks = []Check{
			{"job objects", true, "members from the job's process list; emptiness from the job's completion port"},
			{"graceful stop", true, "each tree has a hidden console; stop = CTRL_BREAK on it (CTRL_C where the console lacks CTRL_BREAK, as under wine), grace, TerminateJobObject"},
		}
		d.Guarantees = newGuarantees(TierJobObject, "Windows: a Job Object per tree")
		d.Invariants = invariantsOf(d.Guarantees, TierJobObject)
	default:
		d.Tier, d.TierReason = "none", "containment on "+runtime.GOOS+" is not implemented"
		d.Guarantees = newGuarantees("", "no tier on "+runtime.GOOS)
	}
	return d
}
