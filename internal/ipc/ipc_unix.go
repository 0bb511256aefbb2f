//go:build unix

package ipc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// SocketName is the control socket's file name in the state directory.
const SocketName = "corral.sock"

// Listen creates the control socket. The caller must already hold the
// daemon lock of the state directory, so a socket file found here is stale.
func Listen(stateDir string) (net.Listener, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("ipc: %w", err)
	}
	if err := os.Chmod(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("ipc: %w", err)
	}
	path := Path(stateDir)
	// A server of this user that answers may be a daemon that lost its lock
	// file: it is never taken over. Another user's cannot be a daemon of
	// this state directory (it would not be trusted by clients); it is a
	// stand-in, and is replaced like a stale socket.
	if p, ours, _ := servedBy(path); ours {
		return nil, fmt.Errorf("ipc: pid %d already answers on %s, though this daemon holds the state directory's lock (a daemon that lost its lock file?): stop it first", p.PID, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("ipc: remove stale socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("ipc: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("ipc: %w", err)
	}
	return ln, nil
}

// Path returns the control socket path for a state directory.
func Path(stateDir string) string { return filepath.Join(stateDir, SocketName) }

// StateDirOf returns the state directory of a control socket path.
func StateDirOf(path string) string { return filepath.Dir(path) }

// Dial connects to the control endpoint at path.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", path)
}
