//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// detach puts the daemon in its own session, so the terminal's Ctrl-C and
// hang-up never reach it behind its verified shutdown.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
