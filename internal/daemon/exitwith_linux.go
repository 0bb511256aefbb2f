package daemon

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// waitPID returns when process pid (not necessarily our child) has exited:
// its pidfd becomes readable then.
func waitPID(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		pollPID(pid)
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		pollPID(pid)
		return
	}
	first := true
	rc.Read(func(uintptr) bool {
		if first { // called once before any readiness: not a signal of exit
			first = false
			return unix.Kill(pid, 0) != nil
		}
		return true
	})
}

func pollPID(pid int) {
	for unix.Kill(pid, 0) == nil {
		time.Sleep(200 * time.Millisecond)
	}
}
