package testproc

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

var loggedSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// stopSignals are the signals a graceful fixture exits cleanly on: both
// console control events arrive as os.Interrupt.
var stopSignals = []os.Signal{os.Interrupt}

// ignoreStopSignals makes this process deaf to console control events.
// signal.Ignore would not do: Go's handler then declines the event and the
// system's default handler ends the process.
func ignoreStopSignals() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		for range ch {
		}
	}()
}

// detach starts c in a process group of its own, the closest Windows has
// to a daemon's setsid().
func detach(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

func closeOnExec(fd int) {}

// execSelf: Windows has no exec in place (Python's os.execv there starts a
// new process, which mode comfy models).
func execSelf(args []string) {
	os.Stderr.WriteString("testproc: no exec in place on Windows\n")
	os.Exit(1)
}
