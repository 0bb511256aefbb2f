package ipc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows the control endpoint is a named pipe whose name derives from
// the state directory, readable and writable only by the user running the
// daemon (AF_UNIX exists on recent Windows but not under wine, where the
// suite runs).

// Path returns the pipe name for a state directory.
func Path(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	sum := sha256.Sum256([]byte(abs))
	return `\\.\pipe\corral-` + hex.EncodeToString(sum[:8])
}

// StateDirOf returns "": a pipe's name is a hash of its state directory.
func StateDirOf(path string) string { return "" }

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

type pipeConn struct {
	*os.File
	addr pipeAddr
}

func (c pipeConn) LocalAddr() net.Addr  { return c.addr }
func (c pipeConn) RemoteAddr() net.Addr { return c.addr }

type pipeListener struct {
	name string
	sa   *windows.SecurityAttributes

	mu     sync.Mutex // guards first, closed and spare
	first  bool
	closed bool
	spare  windows.Handle // the instance Listen created, until Accept takes it

	// done is set by Close and waited on by Accept beside the connection:
	// cancelling the pending I/O alone loses a Close that comes after
	// Accept took the instance but before ConnectNamedPipe started, and
	// Accept would then wait forever (http.Server.Close waits for it).
	// It is never closed: one handle per listener.
	done windows.Handle
}

// Listen creates the daemon's pipe. FILE_FLAG_FIRST_PIPE_INSTANCE makes a
// second daemon for the same state directory fail instead of sharing it.
func Listen(stateDir string) (net.Listener, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("ipc: %w", err)
	}
	sa, err := ownerOnly()
	if err != nil {
		return nil, err
	}
	// Someone answering means a live daemon; FILE_FLAG_FIRST_PIPE_INSTANCE
	// says the same on Windows, but wine does not enforce it.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	c, derr := Dial(ctx, Path(stateDir))
	cancel()
	if derr == nil {
		c.Close()
		return nil, fmt.Errorf("ipc: a daemon already answers on %s", Path(stateDir))
	}
	done, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("ipc: %w", err)
	}
	l := &pipeListener{name: Path(stateDir), sa: sa, first: true, done: done}
	// Create the first instance now, so a second daemon fails at Listen.
	h, err := l.create()
	if err != nil {
		return nil, err
	}
	l.spare = h
	return l, nil
}

func ownerOnly() (*windows.SecurityAttributes, error) {
	tok := windows.GetCurrentProcessToken()
	u, err := tok.GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("ipc: current user: %w", err)
	}
	sd, err := windows.SecurityDescriptorFromString("D:P(A;;GA;;;" + u.User.Sid.String() + ")")
	if err != nil {
		return nil, fmt.Errorf("ipc: security descriptor: %w", err)
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	return sa, nil
}

func (l *pipeListener) create() (windows.Handle, error) {
	flags := uint32(windows.PIPE_ACCESS_DUPLEX | windows.FILE_FLAG_OVERLAPPED)
	if l.first {
		flags |= windows.FILE_FLAG_FIRST_PIPE_INSTANCE
	}
	name, _ := windows.UTF16PtrFromString(l.name)
	h, err := windows.CreateNamedPipe(name, flags,
		windows.PIPE_TYPE_BYTE|windows.PIPE_READMODE_BYTE|windows.PIPE_WAIT|windows.PIPE_REJECT_REMOTE_CLIENTS,
		windows.PIPE_UNLIMITED_INSTANCES, 64<<10, 64<<10, 0, l.sa)
	if err != nil {
		if l.first {
			return 0, fmt.Errorf("ipc: a daemon already listens on %s (or it cannot be created): %w", l.name, err)
		}
		return 0, fmt.Errorf("ipc: create pipe instance: %w", err)
	}
	l.first = false
	return h, nil
}

func (l *pipeListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, net.ErrClosed
	}
	h := l.spare
	l.spare = 0
	if h == 0 {
		var err error
		if h, err = l.create(); err != nil {
			l.mu.Unlock()
			return nil, err
		}
	}
	l.mu.Unlock()

	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("ipc: %w", err)
	}
	defer windows.CloseHandle(ev)
	ov := windows.Overlapped{HEvent: ev}
	err = windows.ConnectNamedPipe(h, &ov)
	if errors.Is(err, windows.ERROR_IO_PENDING) {
		// Blocks this goroutine's thread until a client comes or Close.
		r, _ := windows.WaitForMultipleObjects([]windows.Handle{ev, l.done}, false, windows.INFINITE)
		if r == windows.WAIT_OBJECT_0+1 {
			windows.CancelIoEx(h, &ov)
		}
		var n uint32
		err = windows.GetOverlappedResult(h, &ov, &n, true)
		if r == windows.WAIT_OBJECT_0+1 && err == nil {
			// A client connected as we were closing: turn it away.
			err = net.ErrClosed
		}
	}
	if err != nil && !errors.Is(err, windows.ERROR_PIPE_CONNECTED) {
		l.mu.Lock()
		closed := l.closed
		l.mu.Unlock()
		windows.CloseHandle(h)
		if closed {
			return nil, net.ErrClosed
		}
		return nil, fmt.Errorf("ipc: accept on %s: %w", l.name, err)
	}
	// An overlapped handle handed to os.NewFile joins the runtime's I/O
	// completion port: reads and writes no longer block threads.
	return pipeConn{File: os.NewFile(uintptr(h), l.name), addr: pipeAddr(l.name)}, nil
}

func (l *pipeListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	windows.SetEvent(l.done)
	if l.spare != 0 {
		windows.CloseHandle(l.spare) // no Accept took it: the pipe goes away
		l.spare = 0
	}
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr(l.name) }

// Dial connects to the pipe at path, waiting while every instance is busy.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	name, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	for {
		// SECURITY_IDENTIFICATION: a server that is not the daemon (one
		// that took the pipe's name first) may learn who connected but not
		// act as that user, as it could with the default impersonation.
		h, err := windows.CreateFile(name, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil,
			windows.OPEN_EXISTING, windows.FILE_FLAG_OVERLAPPED|windows.SECURITY_SQOS_PRESENT|windows.SECURITY_IDENTIFICATION, 0)
		if err == nil {
			return pipeConn{File: os.NewFile(uintptr(h), path), addr: pipeAddr(path)}, nil
		}
		if !errors.Is(err, windows.ERROR_PIPE_BUSY) {
			return nil, &net.OpError{Op: "dial", Net: "pipe", Err: err}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Keep returns ln: a named pipe is no file that could be deleted or
// replaced, and no other user can add an instance of it (its security
// descriptor grants only its owner).
func Keep(ln net.Listener, lost func(error)) net.Listener { return ln }
