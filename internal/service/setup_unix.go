//go:build unix

package service

import (
	"fmt"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/corral-sh/corral/internal/config"
)

// setupProcess gives the first process the service's user, groups and
// umask. The credentials are set by the kernel in the child between fork
// and exec, after the child is in its container (clone3 put it there as
// the daemon's user) and before the start gate stops it at exec; the
// umask is set by /bin/sh, which then execs the program in the same
// process (Go has no umask for a child, and the daemon's own is shared by
// all its goroutines).
func setupProcess(cmd *exec.Cmd, cfg *config.Service) {
	if ra := cfg.RunAs; ra != nil && ra.Switch {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: ra.UID, Gid: ra.GID, Groups: ra.Groups}
	}
	if cfg.Umask != nil && cmd.Err == nil {
		// "$0" names the program in sh's own messages; "$@" is the program
		// as Go resolved it (with the daemon's PATH) and its arguments.
		args := append([]string{"/bin/sh", "-c", fmt.Sprintf(`umask %04o && exec "$@"`, *cfg.Umask), cmd.Args[0], cmd.Path}, cmd.Args[1:]...)
		cmd.Path, cmd.Args = "/bin/sh", args
	}
}

// setNice sets the nice value of the process pid (nil: leaves it).
func setNice(pid int, nice *int) error {
	if nice == nil {
		return nil
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, pid, *nice); err != nil {
		return fmt.Errorf("cannot set nice %d on the service's first process (pid %d), so it was not started: %w", *nice, pid, err)
	}
	return nil
}
