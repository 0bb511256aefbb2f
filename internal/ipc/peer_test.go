package ipc

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

// The kernel's record of who serves the endpoint names this process and
// its user (on Windows, and so under wine, GetNamedPipeServerProcessId and
// the server's token).
func TestPeerOfNamesTheServer(t *testing.T) {
	dir := tempDir(t)
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := PeerOf(c)
	if err != nil {
		t.Fatal(err)
	}
	me, err := CurrentUser()
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != os.Getpid() || p.User.ID != me.ID {
		t.Fatalf("peer is pid %d of %s; want pid %d of %s", p.PID, p.User, os.Getpid(), me)
	}
	if want, _ := ExpectedServer(dir); want.ID != me.ID {
		t.Fatalf("expected server for my own state directory is %s, not me (%s)", want, me)
	}
	t.Logf("peer: pid %d of %s", p.PID, p.User)
}

// LockHolder sees a held daemon lock without taking it, and a lock file
// left with a pid but no lock is not taken for a daemon (on Linux the
// holder comes from /proc/locks, not from the file).
func TestLockHolder(t *testing.T) {
	dir := tempDir(t)
	if _, held := LockHolder(dir); held {
		t.Fatal("no lock file, but held")
	}
	path := filepath.Join(dir, LockName)
	lk := flock.New(path)
	if ok, err := lk.TryLock(); err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	if runtime.GOOS != "windows" { // the holder's lock keeps other handles out there
		os.WriteFile(path, []byte("999999999\n"), 0o600)
	}
	pid, held := LockHolder(dir)
	switch {
	case !held && underWine():
		// Wine does not enforce byte-range locks on reads, by which
		// LockHolder tells a held lock on Windows.
		t.Log("under wine a held lock is not seen (no byte-range lock on reads)")
	case !held:
		t.Fatal("the lock is held, but LockHolder says not")
	}
	if runtime.GOOS == "linux" && pid != os.Getpid() {
		t.Fatalf("holder pid %d, want %d (this process, from /proc/locks)", pid, os.Getpid())
	}
	lk.Unlock()
	if runtime.GOOS != "windows" {
		os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	}
	if _, held := LockHolder(dir); held && (runtime.GOOS == "linux" || runtime.GOOS == "windows") {
		t.Fatal("the lock was released, but LockHolder says held")
	}
	// Still no one else can have taken it: LockHolder never locks.
	if ok, err := lk.TryLock(); err != nil || !ok {
		t.Fatalf("relock: %v %v", ok, err)
	}
	lk.Unlock()
}

func tempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "corral-ipc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
