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
