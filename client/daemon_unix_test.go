//go:build unix

package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/daemon"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/proctree"
)

// The client reads the lock the daemon takes.
func TestLockNameIsTheDaemons(t *testing.T) {
	if ipc.LockName != daemon.LockName {
		t.Fatalf("ipc.LockName %q, daemon.LockName %q", ipc.LockName, daemon.LockName)
	}
}

// A real daemon whose socket is deleted makes it again, and the client
// reaches it through the new one; the daemon's events say what happened.
func TestDaemonRecreatesItsDeletedSocket(t *testing.T) {
	dir := shortTempDir(t)
	cfg := filepath.Join(dir, "corral.toml")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "s")
	listening := make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		_, err := daemon.Run(context.Background(), daemon.Options{ConfigPath: cfg, StateDir: state,
			Containment: proctree.ForcePgroup, Version: "test", Listening: func() { close(listening) }})
		ran <- err
	}()
	select {
	case <-listening:
	case err := <-ran:
		t.Fatalf("daemon: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the daemon does not listen after a minute")
	}
	cl := New(ipc.Path(state))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer func() {
		cl.Shutdown(ctx)
		select {
		case <-ran:
		case <-time.After(time.Minute):
			t.Error("the daemon did not end after its shutdown")
		}
	}()
	if d, err := cl.Daemon(ctx); err != nil || d.PID != os.Getpid() {
		t.Fatalf("daemon: %+v, %v", d, err)
	}
	if err := os.Remove(ipc.Path(state)); err != nil {
		t.Fatal(err)
	}
	cl.CloseIdleConnections()
	for {
		_, err := cl.Daemon(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the daemon cannot be reached after its socket was deleted: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var said []string
	cl.Events(ctx, 0, false, func(e Event) error { said = append(said, e.Message); return nil })
	want := "ipc: control socket " + ipc.Path(state) + " was deleted: listening again"
	if !strings.Contains(strings.Join(said, "\n"), want) {
		t.Fatalf("events:\n%s\nwant %q", strings.Join(said, "\n"), want)
	}
}

// The attack of issue 12 against a real daemon: another user replaces its
// socket; the client never talks to the stand-in, and the daemon takes its
// socket back, after which the client reaches it again.
func TestDaemonTakesBackASocketAnotherUserReplaced(t *testing.T) {
	requireRoot(t)
	base, exe := sharedDir(t)
	cfg := filepath.Join(base, "corral.toml")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(base, "s")
	sock := ipc.Path(state)
	listening := make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		_, err := daemon.Run(context.Background(), daemon.Options{ConfigPath: cfg, StateDir: state,
			Containment: proctree.ForcePgroup, Version: "test", Listening: func() { close(listening) }})
		ran <- err
	}()
	select {
	case <-listening:
	case err := <-ran:
		t.Fatalf("daemon: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the daemon does not listen after a minute")
	}
	cl := New(sock)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer func() {
		os.Chmod(state, 0o700)
		cl.Shutdown(ctx)
		select {
		case <-ran:
		case <-time.After(time.Minute):
			t.Error("the daemon did not end after its shutdown")
		}
	}()
	if err := os.Chmod(state, 0o777); err != nil { // a shared place, from now on
		t.Fatal(err)
	}
	logPath := filepath.Join(base, "requests")
	if err := os.WriteFile(logPath, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(logPath, 0o666)
	startFixture(t, asNobody(exe, "client-fakedaemon", sock, logPath))

	refused := 0
	for {
		d, err := cl.Daemon(ctx)
		if err == nil {
			if d.PID != os.Getpid() {
				t.Fatalf("the client believed pid %d", d.PID)
			}
			break
		}
		if !errors.Is(err, ErrUntrusted) || ctx.Err() != nil {
			t.Fatalf("after %d refusals: %v", refused, err)
		}
		refused++
		cl.CloseIdleConnections()
		time.Sleep(20 * time.Millisecond)
	}
	if b, _ := os.ReadFile(logPath); len(b) != 0 {
		t.Fatalf("the stand-in got requests: %q", b)
	}
	var said []string
	cl.Events(ctx, 0, false, func(e Event) error { said = append(said, e.Message); return nil })
	want := "ipc: control socket " + sock + " was replaced by another socket owned by " + userText(nobody) + ": listening again"
	if !strings.Contains(strings.Join(said, "\n"), want) {
		t.Fatalf("events:\n%s\nwant %q", strings.Join(said, "\n"), want)
	}
	t.Logf("refused the stand-in %d times before the daemon took its socket back", refused)
}
