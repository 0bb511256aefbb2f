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
	default:
		d.Tier, d.TierReason = "none", "containment on "+runtime.GOOS+" is not implemented yet (Windows Job Objects are their own issue)"
	}
	return d
}
