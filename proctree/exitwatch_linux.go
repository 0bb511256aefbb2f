package proctree

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// pidfdWatcher wakes a waiter when a watched process exits: a pidfd turns
// readable at exit, and one epoll instance waits on all of them.
type pidfdWatcher struct {
	ep  int
	fds map[int]int // pid → pidfd
	now bool        // a watched pid was already gone: wake at once
}

func newExitWatcher() exitWatcher {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	return &pidfdWatcher{ep: ep, fds: map[int]int{}}
}

func (w *pidfdWatcher) watch(pids []int) {
	for _, pid := range pids {
		if _, ok := w.fds[pid]; ok {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			w.now = true // gone since the scan
			continue
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(pid)}
		if err := unix.EpollCtl(w.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(fd)
			continue
		}
		w.fds[pid] = fd
	}
}

func (w *pidfdWatcher) wait(ctx context.Context, d time.Duration) error {
	if w.now {
		w.now = false
		return ctx.Err()
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		d = max(time.Until(dl), 0)
	}
	var evs [64]unix.EpollEvent
	n, err := unix.EpollWait(w.ep, evs[:], int(d.Milliseconds())+1)
	if err != nil && err != unix.EINTR {
		return err
	}
	for _, ev := range evs[:max(n, 0)] {
		// Exited: it will not be watched again (a zombie is no member).
		pid := int(ev.Fd)
		if fd, ok := w.fds[pid]; ok {
			unix.EpollCtl(w.ep, unix.EPOLL_CTL_DEL, fd, nil)
			unix.Close(fd)
			delete(w.fds, pid)
		}
	}
	return ctx.Err()
}

func (w *pidfdWatcher) close() {
	for _, fd := range w.fds {
		unix.Close(fd)
	}
	unix.Close(w.ep)
}
