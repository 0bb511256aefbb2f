package proctree

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// kqueueWatcher wakes a waiter when a watched process exits: one kqueue
// with an EVFILT_PROC/NOTE_EXIT filter per member.
type kqueueWatcher struct {
	kq      int
	watched map[int]bool
	now     bool // a watched pid was already gone: wake at once
}

func newExitWatcher() exitWatcher {
	kq, err := unix.Kqueue()
	if err != nil {
		return nil
	}
	unix.CloseOnExec(kq)
	return &kqueueWatcher{kq: kq, watched: map[int]bool{}}
}

func (w *kqueueWatcher) watch(pids []int) {
	var changes []unix.Kevent_t
	for _, pid := range pids {
		if w.watched[pid] {
			continue
		}
		var ev unix.Kevent_t
		unix.SetKevent(&ev, pid, unix.EVFILT_PROC, unix.EV_ADD|unix.EV_ONESHOT)
		ev.Fflags = unix.NOTE_EXIT
		changes = append(changes, ev)
		w.watched[pid] = true
	}
	for _, ev := range changes {
		// One at a time: a registration for a process already gone fails
		// with ESRCH, which means "wake now", not "give up".
		if _, err := unix.Kevent(w.kq, []unix.Kevent_t{ev}, nil, &unix.Timespec{}); err != nil {
			delete(w.watched, int(ev.Ident))
			w.now = true
		}
	}
}

func (w *kqueueWatcher) wait(ctx context.Context, d time.Duration) error {
	if w.now {
		w.now = false
		return ctx.Err()
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		d = max(time.Until(dl), 0)
	}
	ts := unix.NsecToTimespec(d.Nanoseconds())
	var evs [64]unix.Kevent_t
	n, err := unix.Kevent(w.kq, nil, evs[:], &ts)
	if err != nil && err != unix.EINTR {
		return err
	}
	for _, ev := range evs[:max(n, 0)] {
		delete(w.watched, int(ev.Ident)) // EV_ONESHOT: the filter is gone
	}
	return ctx.Err()
}

func (w *kqueueWatcher) close() { unix.Close(w.kq) }
