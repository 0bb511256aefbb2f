package main

import (
	"os/exec"
	"syscall"
)

// detach starts the daemon without a console of its own and in a new
// process group, so Ctrl-C in the caller's console does not reach it.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP | 0x08000000 /* CREATE_NO_WINDOW */}
}
