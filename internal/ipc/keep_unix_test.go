//go:build unix

package ipc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperEnv makes the test binary a helper process: "serve PATH" serves
// HTTP on a unix socket at PATH, answering "other".
const helperEnv = "CORRAL_IPC_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		path := strings.TrimPrefix(h, "serve ")
		var ln net.Listener
		var err error
		for range 100 { // the daemon's Keep may make its socket again meanwhile
			os.Remove(path)
			if ln, err = net.Listen("unix", path); err == nil {
				break
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		fmt.Println("listening")
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "other") }))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A daemon's socket that is deleted, or replaced by a dead socket or a
// file, is made again, and clients reach the daemon through it; a live
// server of the same user is left alone (another user's is replaced: see
// the client's tests); once the listener is closed nothing is made again.
func TestKeepRecreatesDeletedOrReplacedSocket(t *testing.T) {
	defer func(d time.Duration) { keepEvery = d }(keepEvery)
	keepEvery = 20 * time.Millisecond
	dir := tempDir(t)
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lost []string
	kl := Keep(ln, func(err error) { mu.Lock(); lost = append(lost, err.Error()); mu.Unlock() })
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "daemon") })}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(kl) }()
	path := Path(dir)
	get := func() (string, error) {
		hc := &http.Client{Transport: &http.Transport{DialContext: Dialer(path), DisableKeepAlives: true}, Timeout: 5 * time.Second}
		resp, err := hc.Get("http://corral/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	waitFor := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, err := get()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the endpoint answers %q, %v; want %q", what, got, err, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("at start", "daemon")

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor("after the socket was deleted", "daemon")

	// plant puts something at the path, where Keep may have made its
	// socket again between the removal and make.
	plant := func(make func() error) {
		t.Helper()
		var err error
		for range 100 {
			os.Remove(path)
			if err = make(); err == nil {
				return
			}
		}
		t.Fatal(err)
	}
	// What is left of a dead server: a socket file nobody listens on.
	plant(func() error {
		dead, err := net.Listen("unix", path)
		if err == nil {
			dead.(*net.UnixListener).SetUnlinkOnClose(false)
			dead.Close()
		}
		return err
	})
	waitFor("after the socket was replaced by a dead one", "daemon")

	// Not a socket at all.
	plant(func() error { return os.WriteFile(path, nil, 0o600) })
	waitFor("after the socket was replaced by a file", "daemon")

	// A process of the same user (another daemon, after this one lost its
	// lock file) serving the path is not fought; once it is gone, the
	// socket it left is replaced.
	os.Remove(path)
	other := exec.Command(os.Args[0])
	other.Env = append(os.Environ(), helperEnv+"=serve "+path)
	other.Stderr = os.Stderr
	out, _ := other.StdoutPipe()
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "listening\n" {
		t.Fatalf("helper: %q", line)
	}
	time.Sleep(10 * keepEvery)
	if got, err := get(); got != "other" {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the daemon took the socket of another process of its user: %q, %v; reports:\n%s", got, err, strings.Join(lost, "\n"))
	}
	other.Process.Kill()
	other.Wait()
	waitFor("after the other process ended", "daemon")

	mu.Lock()
	got := strings.Join(lost, "\n")
	mu.Unlock()
	for _, want := range []string{
		"ipc: control socket " + path + " was deleted: listening again",
		"ipc: control socket " + path + " was replaced by another socket owned by ",
		"ipc: control socket " + path + " was replaced by a file owned by ",
		fmt.Sprintf("served by pid %d of this daemon's user (another corral daemon?): not taking it over", other.Process.Pid),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("reports:\n%s\nwant one with %q", got, want)
		}
	}

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("serve: %v", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("the socket is left after Close: %v", err)
	}
	time.Sleep(10 * keepEvery)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("the socket was made again after Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c, err := Dial(ctx, path); err == nil {
		c.Close()
		t.Fatal("something answers after Close")
	}
}
