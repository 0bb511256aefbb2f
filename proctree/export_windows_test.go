package proctree

import (
	"log/slog"
	"syscall"

	"github.com/corral-sh/corral/internal/procinfo"
)

// JobZeroMessages counts the job-emptied messages the completion port has
// dispatched.
func JobZeroMessages() int64 { return jobPort.zeroMessages.Load() }

// SendConsoleCtrl runs the console control helper for one process identity.
func SendConsoleCtrl(pid int, start uint64) (string, error) {
	return sendConsoleCtrl(slog.New(slog.DiscardHandler), ctrlEvent(syscall.SIGTERM), []procinfo.Identity{{PID: pid, Start: start}})
}

// JobClosed reports whether t's job handle has been closed (released).
func JobClosed(t *Tree) bool {
	jb := t.b.(*jobBackend)
	jb.mu.Lock()
	defer jb.mu.Unlock()
	return jb.closed
}
