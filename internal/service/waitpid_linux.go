package service

import (
	"context"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corral-sh/corral/internal/procinfo"
)

// waitGone returns nil once the process pid (started at start) is gone or
// a zombie, or ctx's error. A pidfd wakes it at the exit; the process need
// not be our child (a daemon's master is the subreaper's, or init's).
func waitGone(ctx context.Context, clock Clock, pid int, start uint64) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return pollGone(ctx, clock, pid, start)
	}
	defer unix.Close(fd)
	// The pid may have been reused between the read of its start time and
	// the open: the identity check after the open settles it.
	if st, err := procinfo.ReadStat(pid); err != nil || st.StartTicks != start || st.Zombie() {
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int((200 * time.Millisecond).Milliseconds()))
		if err == nil && n > 0 {
			return nil
		}
		if st, err := procinfo.ReadStat(pid); err != nil || st.StartTicks != start || st.Zombie() {
			return nil // a zombie whose parent has not reaped it yet is gone for us
		}
	}
}
