package proctree

import (
	"os"

	"golang.org/x/sys/unix"
)

// awaitExit blocks until pid has exited, without reaping it, through the
// runtime's poller: a pidfd becomes readable when its process exits. Waiting
// in exec.Cmd.Wait instead parks one OS thread per tree in waitid, which for
// a daemon with a hundred services is a hundred threads.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return // old kernel: Wait will block a thread, as it always did
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		// With WNOHANG and nothing to report the kernel leaves info as
		// zeroed; an exited child fills in SIGCHLD.
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		return err != nil || info.Signo != 0
	})
}
