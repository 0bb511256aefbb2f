package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/testproc"
)

func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}

// Fixtures, run as real processes (some as another user).
func init() {
	// client-fakedaemon SOCKET LOG: a stand-in for the daemon on SOCKET,
	// as someone who can write the state directory would plant it; it
	// appends every request it gets to LOG and answers a shutdown with a
	// clean result.
	testproc.Register("client-fakedaemon", func(args []string) {
		sock, logPath := args[0], args[1]
		os.Remove(sock)
		ln, err := net.Listen("unix", sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakedaemon:", err)
			os.Exit(1)
		}
		os.Chmod(sock, 0o666)
		fmt.Println("listening")
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0); err == nil {
				fmt.Fprintln(f, r.Method, r.URL.Path)
				f.Close()
			}
			switch r.URL.Path {
			case "/v1/shutdown":
				io.WriteString(w, `{"stopped":["fake"],"survivors":[]}`)
			case "/v1/daemon":
				fmt.Fprintf(w, `{"pid":%d,"version":"fake"}`, os.Getpid())
			default:
				io.WriteString(w, `{}`)
			}
		}))
	})
	// client-lock STATEDIR: holds STATEDIR's daemon lock, as a daemon
	// that has not made its socket yet (or lost it) does.
	testproc.Register("client-lock", func(args []string) {
		lk := flock.New(filepath.Join(args[0], ipc.LockName))
		if ok, err := lk.TryLock(); !ok || err != nil {
			fmt.Fprintln(os.Stderr, "lock:", ok, err)
			os.Exit(1)
		}
		os.WriteFile(filepath.Join(args[0], ipc.LockName), []byte(fmt.Sprintln(os.Getpid())), 0o600)
		fmt.Println("locked")
		select {}
	})
	// client-call SOCKET: asks the daemon on SOCKET who it is and prints
	// the outcome as JSON (a callResult).
	testproc.Register("client-call", func(args []string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := New(args[0]).Daemon(ctx)
		r := callResult{}
		if err != nil {
			r = callResult{Err: err.Error(), NoDaemon: errors.Is(err, ErrNoDaemon),
				Permission: errors.Is(err, ErrPermission), Untrusted: errors.Is(err, ErrUntrusted)}
		}
		json.NewEncoder(os.Stdout).Encode(r)
	})
}

type callResult struct {
	Err                             string
	NoDaemon, Permission, Untrusted bool
}

// startFixture starts cmd and waits for its first line of output.
func startFixture(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		io.Copy(io.Discard, out)
	}()
	select {
	case s := <-line:
		if s == "" {
			cmd.Wait()
			t.Fatalf("fixture %v ended: %s", cmd.Args, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("fixture %v did not start: %s", cmd.Args, stderr.String())
	}
}

// shortTempDir is a temporary directory with a path short enough for a
// unix socket in a subdirectory of it.
func shortTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "corral-client-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// mute is a server for ipc.Listen's endpoint that reads requests and never
// answers; each request line goes to lines.
func mute(t *testing.T, ln net.Listener) (lines chan string) {
	lines = make(chan string, 16)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				s, _ := bufio.NewReader(c).ReadString('\n')
				lines <- strings.TrimSpace(s)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lines
}
