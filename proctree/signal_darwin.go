package proctree

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// sendVerified checks membership, then kills. darwin has no pidfd, so a PID
// reused between the check and the kill is possible in principle; the window
// is the time between two system calls.
func sendVerified(pid int, sig syscall.Signal, isMember func() bool) bool {
	return isMember() && unix.Kill(pid, sig) == nil
}

func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return sig.String()
}
