package service

import (
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"

	"github.com/corral-sh/corral/internal/config"
)

// setupProcess gives the first process the priority class that the
// service's nice value maps to (user, group and umask are refused at load
// on Windows). The class is inherited by the processes it starts.
func setupProcess(cmd *exec.Cmd, cfg *config.Service) {
	if cfg.Nice == nil {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= priorityClass(*cfg.Nice)
}

// priorityClass maps a nice value to a Windows priority class: -20..-11
// high, -10..-1 above normal, 0 normal, 1..10 below normal, 11..19 idle.
// Never realtime.
func priorityClass(nice int) uint32 {
	switch {
	case nice <= -11:
		return windows.HIGH_PRIORITY_CLASS
	case nice < 0:
		return windows.ABOVE_NORMAL_PRIORITY_CLASS
	case nice == 0:
		return windows.NORMAL_PRIORITY_CLASS
	case nice <= 10:
		return windows.BELOW_NORMAL_PRIORITY_CLASS
	}
	return windows.IDLE_PRIORITY_CLASS
}

// setNice: the class was set at creation (setupProcess).
func setNice(int, *int) error { return nil }
