package proctree

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendVerified signals pid only if isMember confirms, after a pidfd pins the
// process, that it is still the member that was listed. Without the pin a
// member could exit and its PID be handed to an unrelated process between
// the listing and the kill. It reports whether the signal was delivered.
func sendVerified(pid int, sig syscall.Signal, isMember func() bool) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			// Kernels before 5.3: verify, then kill; the window is the
			// time between two syscalls.
			return isMember() && unix.Kill(pid, sig) == nil
		}
		return false
	}
	defer unix.Close(fd)
	if !isMember() {
		return false
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0) == nil
}

func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return sig.String()
}
