package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/corral-sh/corral/internal/ipc"
)

// Errors of reaching the daemon, before any request is sent. Each is
// returned wrapped in an error whose message says what was found, where,
// and what to do; test them with errors.Is.
var (
	// ErrNoDaemon: nothing answers on the socket (it is missing or
	// refuses connections), including while a daemon holds the lock of
	// the state directory without a socket (the message says so).
	ErrNoDaemon = errors.New("client: no corral daemon is running")
	// ErrPermission: the socket, or its directory, does not let this user
	// in; the message names their owner.
	ErrPermission = errors.New("client: permission denied")
	// ErrUntrusted: the socket is served by a process of another user than
	// the one expected (ipc.ExpectedServer); nothing was sent to it and
	// nothing it says is read.
	ErrUntrusted = errors.New("client: the socket is served by another user")
	// ErrNotAnswering: the daemon stopped answering while a request with
	// no deadline of its own waited (a liveness check got no answer).
	ErrNotAnswering = errors.New("client: the daemon stopped answering")
)

// connError is a failure to reach the daemon: its message is complete; it
// matches its kind (one of the Err values above) and its cause.
type connError struct {
	msg   string
	kind  error
	cause error
}

func (e *connError) Error() string { return e.msg }
func (e *connError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// dial connects to the socket and checks who serves it before anything is
// written: a request must never reach a stand-in, which could act on it
// (the daemon's own requests carry no secrets, but a stand-in's answer to
// a shutdown would be believed).
func (c *Client) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	conn, err := ipc.Dial(dctx, c.socket)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // the request's own deadline: call says so
		}
		return nil, c.dialError(err)
	}
	peer, err := ipc.PeerOf(conn)
	if errors.Is(err, errors.ErrUnsupported) {
		// Without peer credentials, who made the socket file is the next
		// best witness: no one can create one owned by another user.
		var oerr error
		if peer.User, oerr = ipc.Owner(c.socket); oerr != nil {
			err = fmt.Errorf("%w; and its owner: %w", err, oerr)
		} else {
			err = nil
		}
	}
	if err != nil {
		conn.Close()
		return nil, &connError{kind: ErrUntrusted, cause: err,
			msg: fmt.Sprintf("client: cannot tell who serves %s, so it is not used: %v", c.socket, err)}
	}
	want, why := ipc.ExpectedServer(c.dir)
	if peer.User.ID != want.ID {
		conn.Close()
		// What to do depends on how a stand-in gets there: on unix by
		// writing the state directory; on Windows by creating the pipe
		// before the daemon does (it then cannot start).
		todo := fmt.Sprintf("another user may have replaced the socket, and nothing was sent to it: find out what %s is, remove the socket (a corral daemon makes it again within seconds), and let no one else write to %s (chmod go-w %s)",
			pidText(peer.PID), c.dir, c.dir)
		if runtime.GOOS == "windows" {
			todo = fmt.Sprintf("another user may have taken the pipe's name, and nothing was sent to it: find out what %s is and stop it, then start the daemon (corral up)", pidText(peer.PID))
		}
		return nil, &connError{kind: ErrUntrusted, msg: fmt.Sprintf("client: refusing %s: it is served by %s, not by %s, %s; %s",
			c.socket, peerText(peer), want, why, todo)}
	}
	c.peerPID.Store(int64(peer.PID))
	return conn, nil
}

func peerText(p ipc.Peer) string {
	if p.PID == 0 {
		return p.User.String()
	}
	return fmt.Sprintf("pid %d of %s", p.PID, p.User)
}

func pidText(pid int) string {
	if pid == 0 {
		return "its server"
	}
	return fmt.Sprintf("pid %d", pid)
}

// dialError says why the socket cannot be reached, telling a missing
// daemon from one that holds the lock without a socket, and both from a
// socket this user may not use.
func (c *Client) dialError(err error) error {
	dir := c.dir
	lock := filepath.Join(dir, ipc.LockName)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		state, maybe := "is missing", "it may be starting, or its socket was deleted"
		if !errors.Is(err, fs.ErrNotExist) {
			state, maybe = "refuses connections", "it may be starting or shutting down, or it no longer serves that socket"
		}
		if pid, held := lockHolder(dir); held {
			holder := "a daemon"
			stop := "stop it (a verified shutdown: kill -TERM the daemon's pid) and run corral up"
			if pid > 0 {
				holder = fmt.Sprintf("daemon pid %d", pid)
				stop = fmt.Sprintf("stop it with kill -TERM %d (a verified shutdown) and run corral up", pid)
			}
			return &connError{kind: ErrNoDaemon, cause: err, msg: fmt.Sprintf(
				"client: socket %s %s but %s holds the lock (%s): %s; corral shutdown cannot reach it: wait a moment and retry, or restart it: %s",
				c.socket, state, holder, lock, maybe, stop)}
		}
		why := "no socket " + c.socket
		if state != "is missing" {
			why = "socket " + c.socket + " refuses connections: the daemon that made it has ended"
		}
		if dir == "" { // a Windows pipe of an unknown state directory
			return &connError{kind: ErrNoDaemon, cause: err, msg: fmt.Sprintf(
				"client: no corral daemon is running on %s: start one with: corral up", c.socket)}
		}
		return &connError{kind: ErrNoDaemon, cause: err, msg: fmt.Sprintf(
			"client: no corral daemon is running for %s (%s): start one with: corral up", dir, why)}
	case errors.Is(err, fs.ErrPermission):
		me, _ := ipc.CurrentUser()
		owned := "it belongs to another user"
		if u, oerr := ipc.Owner(c.socket); oerr == nil {
			owned = "owned by " + u.String()
		} else if u, oerr := ipc.Owner(dir); dir != "" && oerr == nil {
			// The directory is what keeps this user out.
			owned = "its directory " + dir + " is owned by " + u.String()
		}
		return &connError{kind: ErrPermission, cause: err, msg: fmt.Sprintf(
			"client: permission denied on %s: %s, and corral runs as %s: run corral as that user, or use a state directory of your own (--state-dir)",
			c.socket, owned, me)}
	case errors.Is(err, context.DeadlineExceeded):
		return &connError{kind: ErrNotAnswering, cause: err, msg: fmt.Sprintf(
			"client: no connection to %s within %v: the daemon accepts none (it may be stopped or overloaded)", c.socket, c.dialTimeout)}
	}
	return &connError{kind: err, msg: fmt.Sprintf("client: connect to %s: %v", c.socket, err)}
}

func lockHolder(dir string) (int, bool) {
	if dir == "" {
		return 0, false
	}
	return ipc.LockHolder(dir)
}

// defaultDialTimeout bounds connecting: a local socket connects at once
// or not at all, unless the daemon is stopped or swamped.
const defaultDialTimeout = 5 * time.Second
