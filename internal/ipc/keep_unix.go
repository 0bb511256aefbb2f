//go:build unix

package ipc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// keepEvery is how often Keep looks at the socket file. A variable so that
// tests need not wait.
var keepEvery = time.Second

// Keep watches the socket ln listens on (from Listen) and listens again when
// its file is deleted or replaced by another (another inode): a daemon
// whose socket was removed by a cleanup script, or swapped by someone who
// can write the state directory, cannot be reached or is impersonated, yet
// goes on running its services. What is found at the path and is not ours
// is removed. lost, if not nil, is called each time with what happened.
// Closing the returned listener closes the socket and ends the watch; the
// caller must hold the daemon lock, as for Listen.
func Keep(ln net.Listener, lost func(error)) net.Listener {
	ul, ok := ln.(*net.UnixListener)
	if !ok {
		return ln
	}
	k := &keptListener{path: ul.Addr().String(), lost: lost, cur: ul, stop: make(chan struct{}), done: make(chan struct{})}
	if st, err := os.Lstat(k.path); err == nil {
		k.id = fileIDOf(st)
	}
	go k.watch()
	return k
}

type fileID struct{ dev, ino uint64 }

func fileIDOf(st os.FileInfo) fileID {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || st.Mode()&os.ModeSocket == 0 {
		return fileID{}
	}
	return fileID{dev: uint64(sys.Dev), ino: uint64(sys.Ino)}
}

type keptListener struct {
	path string
	lost func(error)
	stop chan struct{} // closed by Close
	done chan struct{} // closed when watch returns

	mu      sync.Mutex // guards cur, id, suspect and closed
	cur     *net.UnixListener
	id      fileID // of our socket file; zero: none
	suspect fileID // a foreign socket that did not answer when last seen
	closed  bool
}

func (k *keptListener) Accept() (net.Conn, error) {
	for {
		k.mu.Lock()
		cur, closed := k.cur, k.closed
		k.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		c, err := cur.Accept()
		if err == nil {
			return c, nil
		}
		k.mu.Lock()
		swapped := k.cur != cur
		k.mu.Unlock()
		if !swapped {
			return nil, err
		}
		// The watch replaced the socket and closed the old one under us.
	}
}

func (k *keptListener) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	cur := k.cur
	k.mu.Unlock()
	close(k.stop)
	<-k.done // no socket is made again after Close returns
	return cur.Close()
}

func (k *keptListener) Addr() net.Addr {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cur.Addr()
}

func (k *keptListener) watch() {
	defer close(k.done)
	t := time.NewTicker(keepEvery)
	defer t.Stop()
	last := "" // the failure reported last, said once, not every second
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
		}
		err := k.check()
		switch {
		case err == nil:
			last = ""
		case errors.Is(err, errRecreated):
			last = ""
			k.report(err)
		case err.Error() != last:
			last = err.Error()
			k.report(err)
		}
	}
}

func (k *keptListener) report(err error) {
	if k.lost != nil {
		k.lost(err)
	}
}

var errRecreated = errors.New("listening again")

// check listens again if the socket file is not ours any more.
func (k *keptListener) check() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	st, err := os.Lstat(k.path)
	what := ""
	switch {
	case errors.Is(err, os.ErrNotExist):
		what = "was deleted"
	case err != nil:
		return fmt.Errorf("ipc: control socket %s cannot be checked: %w", k.path, err)
	case k.id != (fileID{}) && fileIDOf(st) == k.id:
		k.suspect = fileID{}
		return nil
	default:
		what = fmt.Sprintf("was replaced by %s owned by %s", kindOf(st), ownerOf(st))
		p, ours, answers := servedBy(k.path)
		switch id := fileIDOf(st); {
		case ours:
			// Most likely a second daemon of ours, started after this one
			// lost its lock file: fighting it for the path would leave
			// clients reaching either in turn.
			return fmt.Errorf("ipc: control socket %s %s, served by pid %d of this daemon's user (another corral daemon?): not taking it over; clients reach that process, not this one (pid %d): stop one of them", k.path, what, p.PID, os.Getpid())
		case !answers && id != (fileID{}) && id != k.suspect:
			// A socket that does not answer yet may be between its bind
			// and its listen: look again next time.
			k.suspect = id
			return nil
		}
		// Another user's stand-in, or a dead socket, or not a socket.
		if err := os.Remove(k.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("ipc: control socket %s %s, which cannot be removed: %w; clients cannot reach the daemon", k.path, what, err)
		}
	}
	ln, err := net.Listen("unix", k.path)
	if err != nil {
		return fmt.Errorf("ipc: control socket %s %s and cannot be made again: %w; clients cannot reach the daemon until it is", k.path, what, err)
	}
	ul := ln.(*net.UnixListener)
	// On failure from here, what is at the path may already be someone
	// else's again: closing must not delete it.
	abandon := func() { ul.SetUnlinkOnClose(false); ul.Close() }
	if err := os.Chmod(k.path, 0o600); err != nil {
		abandon()
		return fmt.Errorf("ipc: control socket %s %s; the new one's mode cannot be set: %w", k.path, what, err)
	}
	nst, err := os.Lstat(k.path)
	if err != nil {
		abandon()
		return fmt.Errorf("ipc: control socket %s %s; the new one vanished: %w", k.path, what, err)
	}
	old := k.cur
	// The old listener's path is not its own any more: closing it must not
	// delete the new socket.
	old.SetUnlinkOnClose(false)
	// A file made later may reuse the suspect's inode number.
	k.cur, k.id, k.suspect = ul, fileIDOf(nst), fileID{}
	old.Close()
	return fmt.Errorf("ipc: control socket %s %s: %w", k.path, what, errRecreated)
}

// servedBy says whether a process of this user answers on path (or one
// whose user cannot be told), and whether anyone answers at all.
func servedBy(path string) (p Peer, ours, answers bool) {
	c, err := net.DialTimeout("unix", path, 200*time.Millisecond)
	if err != nil {
		return Peer{}, false, false
	}
	defer c.Close()
	p, err = PeerOf(c)
	if err != nil {
		return p, true, true
	}
	me, _ := CurrentUser()
	return p, p.User.ID == me.ID, true
}

func ownerOf(st os.FileInfo) string {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uidUser(sys.Uid).String()
	}
	return "an unknown user"
}

func kindOf(st os.FileInfo) string {
	switch m := st.Mode(); {
	case m&os.ModeSocket != 0:
		return "another socket"
	case m.IsDir():
		return "a directory"
	case m&os.ModeSymlink != 0:
		return "a symlink"
	case m.IsRegular():
		return "a file"
	}
	return "a special file"
}
