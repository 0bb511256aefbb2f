//go:build unix && !linux

package ipc

import "syscall"

// lockHeld trusts the pid the daemon wrote in its lock file while a process
// of that pid is alive: no portable call names a flock(2) holder. A stale
// file whose pid was reused says "held" wrongly; the message says "may".
func lockHeld(_ *syscall.Stat_t, pid int) (int, bool) {
	return pid, alive(pid)
}
