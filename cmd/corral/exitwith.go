package main

import (
	"errors"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/internal/procinfo"
)

// checkExitWith validates --exit-with before anything starts: a pid of a
// process that runs now. A daemon tied to a pid that does not exist would
// shut down the moment it started, or, were the pid reused, live as long
// as an unrelated process.
func checkExitWith(cmd *cobra.Command, pid int) error {
	if !cmd.Flags().Changed("exit-with") {
		return nil
	}
	if pid <= 0 {
		return usageErr("--exit-with %d is not a pid: give the pid of the process whose exit shuts the daemon down (the app's own, e.g. os.getpid() in Python)", pid)
	}
	st, err := procinfo.ReadStat(pid)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, procinfo.ErrNotFound) || err == nil && st.Zombie() {
		return usageErr("--exit-with %d: no process with this pid is running (it has exited, or the pid is mistyped); nothing was started: give the pid of a running process (the app's own, e.g. os.getpid() in Python)", pid)
	}
	// Any other answer (another user's process, a platform that cannot
	// tell) lets it through: the daemon then waits for it as it can.
	return nil
}
