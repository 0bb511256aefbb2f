package proctree

import (
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Output copying on Linux. A pipe in the runtime's poller wakes the poller
// on every write (epoll is edge-triggered there, and a pipe signals each
// write): a program that flushes every line (python -u, a logger) costs the
// daemon a wake-up per line even while its copier waits on a timer. So the
// read end leaves the runtime's poller for one of ours, armed one shot at a
// time (EPOLLONESHOT, level-triggered): a busy pipe is read on a timer,
// every coalesce, with no wake-up in between however many lines are
// written; a quiet one is waited for in epoll, costing nothing.

// copyBufs are borrowed only while a pipe has data. A plain io.Copy keeps a
// buffer per stream for the life of the tree, which for a daemon with a
// hundred quiet services is several megabytes doing nothing. 64 KiB is a
// pipe's default capacity: a full pipe is emptied in one read.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// copyPipe copies r (a pipe's read end) to w until EOF.
func copyPipe(w io.Writer, r *os.File) {
	fd, err := leavePoller(r)
	if err != nil {
		io.Copy(w, r)
		return
	}
	defer unix.Close(fd)
	wake, err := outPoll.add(fd)
	if err != nil {
		f := os.NewFile(uintptr(fd), "output")
		io.Copy(w, f)
		return
	}
	defer outPoll.remove(fd)
	pace := newPacer()
	for {
		buf := copyBufs.Get().(*[]byte)
		n, err := unix.Read(fd, *buf)
		if n > 0 {
			w.Write((*buf)[:n])
		}
		copyBufs.Put(buf)
		switch {
		case n > 0:
			pace.read(n, len(*buf))
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			pace.idle()
			if err := outPoll.arm(fd); err != nil {
				return
			}
			<-wake
		default: // EOF, or an error
			return
		}
	}
}

// leavePoller returns a descriptor of r's pipe outside the runtime's
// poller (still non-blocking, close-on-exec), and closes r, which takes r's
// own descriptor out of the runtime's epoll.
func leavePoller(r *os.File) (int, error) {
	rc, err := r.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	r.Close()
	return fd, nil
}

// outPoller waits for output pipes to become readable: one epoll instance
// and one goroutine (blocked in epoll_wait, a thread of its own) for the
// whole process, started with the first pipe.
type outPoller struct {
	once sync.Once
	epfd int
	err  error
	mu   sync.Mutex
	wake map[int32]chan struct{}
}

var outPoll outPoller

const outEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// add registers fd, armed, and returns the channel its readiness is told on.
func (p *outPoller) add(fd int) (chan struct{}, error) {
	p.once.Do(func() {
		p.epfd, p.err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if p.err == nil {
			p.wake = map[int32]chan struct{}{}
			go p.loop()
		}
	})
	if p.err != nil {
		return nil, p.err
	}
	ch := make(chan struct{}, 1)
	p.mu.Lock()
	p.wake[int32(fd)] = ch
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: outEvents, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Lock()
		delete(p.wake, int32(fd))
		p.mu.Unlock()
		return nil, err
	}
	return ch, nil
}

// arm asks for one more readiness event of fd (level-triggered: data
// already there fires at once).
func (p *outPoller) arm(fd int) error {
	ev := unix.EpollEvent{Events: outEvents, Fd: int32(fd)}
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
}

// remove unregisters fd; call it before closing fd.
func (p *outPoller) remove(fd int) {
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	p.mu.Lock()
	delete(p.wake, int32(fd))
	p.mu.Unlock()
}

func (p *outPoller) loop() {
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			continue // EINTR
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			if ch := p.wake[ev.Fd]; ch != nil {
				select {
				case ch <- struct{}{}:
				default: // already told
				}
			}
		}
		p.mu.Unlock()
	}
}
