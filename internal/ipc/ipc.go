package ipc

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"time"
)

// Dialer returns a DialContext function that ignores the address and
// connects to the control endpoint at path (from Path). It checks nothing
// about who answers; the client package does.
func Dialer(path string) func(ctx context.Context, _, _ string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) { return Dial(ctx, path) }
}

// LockName is the daemon's lock file in the state directory. It is
// daemon.LockName, which imports this package and so cannot be named here
// (a test keeps the two equal).
const LockName = "daemon.lock"

// Idle keep-alive connections: the daemon closes one idle for IdleTimeout,
// a client sooner (ClientIdleTimeout). The client must go first: a request
// written on a connection the server is closing at that moment fails, and
// a POST is not retried.
const (
	IdleTimeout       = 2 * time.Minute
	ClientIdleTimeout = 30 * time.Second
)

// User is a local account: a uid on unix, a SID on Windows.
type User struct {
	ID   string // "1000"; "S-1-5-21-…"
	Name string // "alice"; `HOST\alice`; "": looked up by String
}

// String names the user for messages: "uid 1000 (alice)" on unix,
// `HOST\alice (S-1-5-21-…)` on Windows.
func (u User) String() string { return userString(u) }

// Peer is the process at the far end of a connection: for a client, the
// one that created the listening socket or pipe.
type Peer struct {
	PID  int // 0 when the platform does not say
	User User
}

// PeerOf says who serves c, a connection made by Dial, as the kernel
// recorded it (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS, the pipe
// server's process token on Windows): not what the server claims. Where the
// platform cannot tell, it returns an error wrapping errors.ErrUnsupported.
func PeerOf(c net.Conn) (Peer, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Peer{}, fmt.Errorf("ipc: a %T has no descriptor to ask who serves it", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("ipc: peer credentials: %w", err)
	}
	var p Peer
	var perr error
	if err := rc.Control(func(fd uintptr) { p, perr = peerOf(fd) }); err != nil {
		return Peer{}, fmt.Errorf("ipc: peer credentials: %w", err)
	}
	if perr != nil {
		return Peer{}, fmt.Errorf("ipc: peer credentials: %w", perr)
	}
	return p, nil
}
