package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/procinfo"
)

// Forking daemons, as Debian ships them (systemd's Type=forking): nginx with
// its default `daemon on`, redis-server --daemonize yes. The launcher exits
// 0 at once; the master is the pid in the pidfile. kill -9 of the master
// must restart the service with the old workers gone. These programs
// rewrite their environment (setproctitle), so the checks use the tree's
// members by pid and start time, not the environment marker.

// needProgram skips when prog is missing, unless CI asked for the real
// programs (CORRAL_REAL_PROGRAMS=1): there a missing one fails.
func needProgram(t *testing.T, prog string) string {
	path, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("CORRAL_REAL_PROGRAMS") == "1" {
			t.Fatalf("%s is not installed, and CORRAL_REAL_PROGRAMS=1 says it must be", prog)
		}
		t.Skipf("%s is not installed (Debian: apt-get install nginx-light redis-server)", prog)
	}
	return path
}

// needContainingTier says which tier holds the daemon: the cgroup tier, or
// the process-group tier, where a setsid daemon that rewrites its
// environment stays a member because it is re-parented to its tree's shim
// (issue 11, part 2). Both must contain these programs; nothing skips.
func needContainingTier(t *testing.T, s client.Service) {
	switch {
	case strings.HasPrefix(s.Mechanism, "cgroup"), s.Mechanism == "pgroup":
		t.Logf("containment: %s", s.Mechanism)
	default:
		t.Fatalf("unexpected containment %q", s.Mechanism)
	}
}

type identity struct {
	pid   int
	start uint64
}

func identities(t *testing.T, s client.Service) []identity {
	var out []identity
	for _, m := range s.Members {
		out = append(out, identity{m.PID, m.StartTicks})
	}
	return out
}

func alive(id identity) bool {
	st, err := procinfo.ReadStat(id.pid)
	return err == nil && st.StartTicks == id.start && !st.Zombie()
}

// killMasterAndWait SIGKILLs the main process and waits for a new instance
// that is ready with a main process of its own.
func killMasterAndWait(t *testing.T, e *env, name string, first client.Service) client.Service {
	old := identities(t, first)
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var s client.Service
	for {
		s = e.inspect(name)
		if s.Instance != first.Instance && s.State == "ready" && s.PID != 0 && s.PID != s.Leader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not restarted after kill -9 of its master: %+v", name, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range old {
		if alive(id) {
			argv, _ := procinfo.Cmdline(id.pid)
			t.Fatalf("pid %d (%s) of the killed instance survived", id.pid, strings.Join(argv, " "))
		}
	}
	if s.Restarts != first.Restarts+1 {
		t.Fatalf("restarts %d, want %d", s.Restarts, first.Restarts+1)
	}
	return s
}

func waitMain(t *testing.T, e *env, name string) client.Service {
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := e.inspect(name)
		if s.State == "ready" && s.PID != 0 && s.PID != s.Leader {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never ready with its master known: %+v", name, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pidIn(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	return pid
}

func TestRealNginxForking(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	e := newEnv(t, forkingDaemon("nginx").toml(t, dir, port))
	e.must("up")
	first := waitMain(t, e, "nginx")
	needContainingTier(t, first)
	if first.PID != pidIn(t, filepath.Join(dir, "nginx.pid")) || first.MemberCount != 3 {
		t.Fatalf("main %d (pidfile %d), %d members (want master + 2 workers)", first.PID, pidIn(t, filepath.Join(dir, "nginx.pid")), first.MemberCount)
	}
	for i := 0; i < 2; i++ {
		first = killMasterAndWait(t, e, "nginx", first)
	}
	ids := identities(t, first)
	out := e.must("shutdown")
	for _, id := range ids {
		if alive(id) {
			t.Fatalf("pid %d survived the shutdown:\n%s", id.pid, out)
		}
	}
}

// Negative control for the nginx test: the same nginx started by hand and
// its master killed, as a supervisor that tracks one pid does: the workers
// live on, still serving the port.
func TestRealNginxWorkersOutliveTheirMaster(t *testing.T) {
	nginx := needProgram(t, "nginx")
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("daemon off;\npid %[1]s/nginx.pid;\nerror_log %[1]s/error.log;\nworker_processes 2;\nevents {}\nhttp { access_log off; client_body_temp_path %[1]s/b; proxy_temp_path %[1]s/p; fastcgi_temp_path %[1]s/f; uwsgi_temp_path %[1]s/u; scgi_temp_path %[1]s/s; server { listen 127.0.0.1:%[2]d; } }\n", dir, port)), 0o644)
	cmd := exec.Command(nginx, "-c", conf, "-p", dir)
	// Its own process group, so the cleanup reaches the workers by group
	// id (they stay in it), never by name.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	defer syscall.Kill(-pgid, syscall.SIGKILL)
	var workers []int
	deadline := time.Now().Add(10 * time.Second)
	for len(workers) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("nginx never started its workers")
		}
		time.Sleep(20 * time.Millisecond)
		workers = workers[:0]
		if all, err := procinfo.PIDs(); err == nil {
			for _, p := range all {
				if st, err := procinfo.ReadStat(p); err == nil && st.PPID == pgid {
					workers = append(workers, p)
				}
			}
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	time.Sleep(200 * time.Millisecond) // the workers get no word of it; nothing to wait for
	var alive int
	for _, p := range workers {
		if st, err := procinfo.ReadStat(p); err == nil && !st.Zombie() {
			alive++
		}
	}
	if alive == 0 {
		t.Fatal("the workers died with their master: the nginx test above would prove nothing")
	}
}

func TestRealRedisDaemonize(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	e := newEnv(t, forkingDaemon("redis").toml(t, dir, port))
	e.must("up")
	first := waitMain(t, e, "redis")
	needContainingTier(t, first)
	if first.PID != pidIn(t, filepath.Join(dir, "redis.pid")) {
		t.Fatalf("main %d, pidfile %d", first.PID, pidIn(t, filepath.Join(dir, "redis.pid")))
	}
	s := killMasterAndWait(t, e, "redis", first)
	ids := identities(t, s)
	e.must("shutdown")
	for _, id := range ids {
		if alive(id) {
			t.Fatalf("pid %d survived the shutdown", id.pid)
		}
	}
}

// Without pidfile, a daemonizing redis under lifetime = "leader" is ended
// when its launcher exits 0, and corral says why and what to set.
func TestRealRedisDaemonizeWithoutPidfileIsExplained(t *testing.T) {
	redis := needProgram(t, "redis-server")
	port := freePort(t)
	dir := t.TempDir()
	e := newEnv(t, fmt.Sprintf(`
[services.redis]
command = [%q, "--port", "%d", "--bind", "127.0.0.1", "--daemonize", "yes", "--pidfile", "%s/redis.pid", "--dir", %q, "--save", ""]
restart = { policy = "never" }
`, redis, port, dir, dir))
	e.corral("up")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ev := e.must("events", "-n", "0"); strings.Contains(ev, "daemonizes") && strings.Contains(ev, "pidfile") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no hint that redis daemonizes:\n%s", e.must("events", "-n", "0"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
