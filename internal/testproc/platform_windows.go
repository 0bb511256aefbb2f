package testproc

import (
	"os"
	"os/exec"
	"syscall"
)

var loggedSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// detach starts c in a process group of its own, the closest Windows has
// to a daemon's setsid().
func detach(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

func closeOnExec(fd int) {}
