//go:build unix

package testproc

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

var loggedSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT, syscall.SIGCONT}

// stopSignals are the signals a graceful fixture exits cleanly on.
var stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT}

// ignoreStopSignals makes this process deaf to stop signals.
func ignoreStopSignals() { signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP) }

// detach starts c in a session of its own, like a daemon's setsid().
func detach(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }

func closeOnExec(fd int) { syscall.CloseOnExec(fd) }

// execSelf replaces this process with the fixture args[0] (same pid), as
// Python's os.execv does on Unix.
func execSelf(args []string) {
	exe, err := os.Executable()
	if err == nil {
		env := fixtureEnv(args[0])
		err = syscall.Exec(exe, append([]string{exe}, args...), env)
	}
	os.Stderr.WriteString("testproc: exec: " + err.Error() + "\n")
	os.Exit(1)
}
