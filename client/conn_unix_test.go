//go:build unix

package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/testproc"
)

// nobody is the other user of these tests: it exists on most systems, and
// a uid needs no account to run a process.
const nobody = 65534

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it runs a process as another user (uid 65534)")
	}
}

func userText(uid int) string {
	if u, err := user.LookupId(fmt.Sprint(uid)); err == nil {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}

// sharedDir is a directory every user can enter, holding a copy of the test
// binary that they can run (the build's own directory is root's, 0700).
func sharedDir(t *testing.T) (dir, exe string) {
	dir = shortTempDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe = filepath.Join(dir, "client.test")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, exe
}

// asNobody is fixture name run from exe as uid 65534.
func asNobody(exe, name string, args ...string) *exec.Cmd {
	cmd := testproc.Command(name, args...)
	cmd.Path, cmd.Args[0] = exe, exe
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	return cmd
}

// The attack of issue 12: the state directory sits where another user can
// write; that user swaps the socket for one of their own, which answers a
// shutdown with a clean result. The client refuses it before sending
// anything; the same request without the check would have believed it.
func TestRefusesASocketServedByAnotherUser(t *testing.T) {
	requireRoot(t)
	base, exe := sharedDir(t)
	state := filepath.Join(base, "s")
	sock := ipc.Path(state)
	ln, err := ipc.Listen(state) // root's daemon
	if err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) })}
	go srv.Serve(ln)
	defer srv.Close()
	if err := os.Chmod(state, 0o777); err != nil { // a shared place
		t.Fatal(err)
	}
	logPath := filepath.Join(base, "requests")
	if err := os.WriteFile(logPath, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(logPath, 0o666)
	fake := asNobody(exe, "client-fakedaemon", sock, logPath)
	startFixture(t, fake)
	pid := fake.Process.Pid

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := New(sock).Shutdown(ctx)
	if !errors.Is(err, ErrUntrusted) || errors.Is(err, ErrNoDaemon) {
		t.Fatalf("shutdown through another user's socket: %+v, %v; want ErrUntrusted", res, err)
	}
	want := fmt.Sprintf("client: refusing %s: it is served by pid %d of %s, not by uid 0 (root), who runs corral; "+
		"another user may have replaced the socket, and nothing was sent to it: find out what pid %d is, "+
		"remove the socket (a corral daemon makes it again within seconds), and let no one else write to %s (chmod go-w %s)",
		sock, pid, userText(nobody), pid, state, state)
	if err.Error() != want {
		t.Fatalf("error:\n%s\nwant:\n%s", err, want)
	}
	t.Log(err)
	if b, _ := os.ReadFile(logPath); len(b) != 0 || reached.Load() != 0 {
		t.Fatalf("a request was sent: the stand-in logged %q, the daemon got %d", b, reached.Load())
	}

	// Negative control: the same request, dialed without the check, gets
	// the stand-in's answer, which `corral shutdown` would print as
	// "verified: 0 supervised processes remain".
	hc := &http.Client{Transport: &http.Transport{DialContext: ipc.Dialer(sock)}, Timeout: 30 * time.Second}
	resp, err := hc.Post("http://corral/v1/shutdown", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var believed ShutdownResult
	err = json.NewDecoder(resp.Body).Decode(&believed)
	resp.Body.Close()
	if err != nil || len(believed.Survivors) != 0 || len(believed.Stopped) != 1 || believed.Stopped[0] != "fake" {
		t.Fatalf("unchecked answer: %+v, %v; want the stand-in's clean result", believed, err)
	}
	if b, _ := os.ReadFile(logPath); string(b) != "POST /v1/shutdown\n" {
		t.Fatalf("the stand-in logged %q", b)
	}
}

// A socket this user may not open is a permission error naming the owner
// of what keeps the user out, not "no daemon".
func TestPermissionDeniedNamesTheOwner(t *testing.T) {
	requireRoot(t)
	base, exe := sharedDir(t)
	state := filepath.Join(base, "s")
	sock := ipc.Path(state)
	ln, err := ipc.Listen(state) // 0700 directory, 0600 socket
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(ln)
	defer srv.Close()
	call := func() callResult {
		t.Helper()
		out, err := asNobody(exe, "client-call", sock).Output()
		var r callResult
		if jerr := json.Unmarshal(out, &r); jerr != nil {
			t.Fatalf("client-call: %v, %v: %q", err, jerr, out)
		}
		return r
	}
	tail := fmt.Sprintf(", and corral runs as %s: run corral as that user, or use a state directory of your own (--state-dir)", userText(nobody))
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{
		{0o700, fmt.Sprintf("client: permission denied on %s: its directory %s is owned by uid 0 (root)", sock, state) + tail},
		{0o755, fmt.Sprintf("client: permission denied on %s: owned by uid 0 (root)", sock) + tail},
	} {
		if err := os.Chmod(state, tc.mode); err != nil {
			t.Fatal(err)
		}
		r := call()
		t.Log(r.Err)
		if r.Err != tc.want || !r.Permission || r.NoDaemon {
			t.Errorf("state directory %v: %+v\nwant: %s (ErrPermission)", tc.mode, r, tc.want)
		}
	}
}

// A missing socket while a process holds the daemon lock says so and who
// it is; without the lock it is no daemon, with the way to start one.
func TestMissingSocketTellsALockHolderFromNoDaemon(t *testing.T) {
	state := filepath.Join(shortTempDir(t), "s")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	sock, lock := ipc.Path(state), filepath.Join(state, ipc.LockName)
	holder := testproc.Command("client-lock", state)
	startFixture(t, holder)
	pid := holder.Process.Pid
	cl := New(sock)
	check := func(what, want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := cl.Daemon(ctx)
		if !errors.Is(err, ErrNoDaemon) || err.Error() != want {
			t.Errorf("%s: %v\nwant: %s (ErrNoDaemon)", what, err, want)
		}
		t.Log(err)
	}
	restart := fmt.Sprintf("wait a moment and retry, or restart it: stop it with kill -TERM %d (a verified shutdown) and run corral up", pid)
	check("missing socket, lock held", fmt.Sprintf(
		"client: socket %s is missing but daemon pid %d holds the lock (%s): it may be starting, or its socket was deleted; corral shutdown cannot reach it: %s",
		sock, pid, lock, restart))

	// A socket file nobody listens on (a daemon that ended without removing it).
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	check("dead socket, lock held", fmt.Sprintf(
		"client: socket %s refuses connections but daemon pid %d holds the lock (%s): it may be starting or shutting down, or it no longer serves that socket; corral shutdown cannot reach it: %s",
		sock, pid, lock, restart))

	holder.Process.Kill()
	holder.Wait()
	check("dead socket, no lock", fmt.Sprintf(
		"client: no corral daemon is running for %s (socket %s refuses connections: the daemon that made it has ended): start one with: corral up", state, sock))
	os.Remove(sock)
	check("no socket, no lock", fmt.Sprintf(
		"client: no corral daemon is running for %s (no socket %s): start one with: corral up", state, sock))
}

// A stopped daemon (SIGSTOP: the kernel still accepts connections for it)
// cannot hold a call past its bound: an ensure's Timeout, or for a call
// without a deadline the liveness check.
func TestStoppedDaemonCannotHoldACall(t *testing.T) {
	defer func(e, to time.Duration) { livenessEvery, livenessTimeout = e, to }(livenessEvery, livenessTimeout)
	livenessEvery, livenessTimeout = 100*time.Millisecond, 300*time.Millisecond
	dir := shortTempDir(t)
	sock := ipc.Path(dir)
	logPath := filepath.Join(dir, "requests")
	os.WriteFile(logPath, nil, 0o600)
	d := testproc.Command("client-fakedaemon", sock, logPath)
	startFixture(t, d)
	pid := d.Process.Pid
	cl := New(sock)
	if _, err := cl.Daemon(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer d.Process.Signal(syscall.SIGCONT)
	waitStopped(t, pid)
	cl.CloseIdleConnections()

	wait := func(what string, call func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			t.Fatalf("%s against a stopped daemon has not returned after a minute", what)
			return nil
		}
	}
	began := time.Now()
	err := wait("ensure", func() error { _, err := cl.Ensure(context.Background(), "web", 500*time.Millisecond); return err })
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(began) < 500*time.Millisecond {
		t.Fatalf("ensure after %v: %v; want a deadline error at its 500ms timeout", time.Since(began), err)
	}
	t.Log(err)

	err = wait("shutdown", func() error { _, err := cl.Shutdown(context.Background()); return err })
	want := fmt.Sprintf("client: POST /v1/shutdown: the daemon (pid %d) on %s stopped answering: a liveness check got no answer within 300ms while this request waited; "+
		"it may be stopped (SIGSTOP: kill -CONT %d) or hung, and whether the request took effect is unknown", pid, sock, pid)
	if !errors.Is(err, ErrNotAnswering) || err.Error() != want {
		t.Fatalf("shutdown: %v\nwant: %s", err, want)
	}
	t.Log(err)
}

// waitStopped waits until pid is stopped: a signal is delivered
// asynchronously. Where /proc does not say, it waits a while.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			time.Sleep(time.Second)
			return
		}
		// pid (comm) STATE ...: comm may hold spaces or parentheses.
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && (f[0] == "T" || f[0] == "t") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pid %d is not stopped a minute after SIGSTOP", pid)
}
