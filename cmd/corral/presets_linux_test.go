package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/corral-sh/corral/internal/testproc"
)

// The presets of common servers against the real programs Debian ships:
// redis-server (package redis-server) and PostgreSQL (package postgresql).

func TestRealRedisPreset(t *testing.T) {
	redis := needProgram(t, "redis-server")
	cli := needProgram(t, "redis-cli")
	port := freePort(t)
	e := newEnv(t, fmt.Sprintf(`
[services.redis]
preset = "redis"
port = %[1]d
command = [%[2]q, "--port", "%[1]d", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", %[3]q]
`, port, redis, t.TempDir()))
	e.must("up") // returns once the preset's probe (redis-cli PING) passed
	if s := e.inspect("redis"); s.State != "ready" {
		t.Fatalf("after up: %+v", s)
	}
	if out, err := exec.Command(cli, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "PING").Output(); err != nil || strings.TrimSpace(string(out)) != "PONG" {
		t.Fatalf("PING: %q %v", out, err)
	}
	// The control: the preset's probe fails where no redis answers.
	if err := exec.Command(cli, "-h", "127.0.0.1", "-p", strconv.Itoa(freePort(t)), "PING").Run(); err == nil {
		t.Fatal("redis-cli PING passes with no server: the preset's probe would prove nothing")
	}
	if out := e.must("stop", "redis"); !strings.Contains(out, "0 left") {
		t.Fatalf("stop: %s", out)
	}
	if logs := e.must("logs", "redis", "-n", "0"); !strings.Contains(logs, "SIGTERM") {
		t.Fatalf("redis did not log the TERM of the stop:\n%s", logs)
	}
}

// postgresBin finds Debian's PostgreSQL server programs (not on PATH:
// /usr/lib/postgresql/VERSION/bin).
func postgresBin(t *testing.T) string {
	if p, err := exec.LookPath("postgres"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p)
		}
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(m) == 0 {
		if os.Getenv("CORRAL_REAL_PROGRAMS") == "1" {
			t.Fatal("PostgreSQL is not installed, and CORRAL_REAL_PROGRAMS=1 says it must be (Debian: apt-get install postgresql)")
		}
		t.Skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
	}
	return filepath.Dir(m[len(m)-1])
}

// postgres refuses to run as root: the service runs it as a user of its
// own (user =), the postgres preset finds it ready with pg_isready and
// stops it with SIGINT, its fast shutdown.
func TestRealPostgresPresetAsItsUser(t *testing.T) {
	bin := postgresBin(t)
	if _, err := exec.LookPath("pg_isready"); err != nil {
		needProgram(t, "pg_isready")
	}
	u := testproc.User(t)
	base := sharedDir(t)
	if err := os.Chown(base, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "data")
	if out, err := exec.Command("runuser", "-u", u.Name, "--", filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := freePort(t)
	e := newEnv(t, fmt.Sprintf(`
[services.db]
preset = "postgres"
port = %[1]d
user = %[2]q
command = [%[3]q, "-D", %[4]q, "-k", %[5]q, "-p", "%[1]d", "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
`, port, u.Name, filepath.Join(bin, "postgres"), data, base))
	e.must("up")
	s := e.inspect("db")
	if s.State != "ready" || s.MemberCount < 3 {
		t.Fatalf("after up: %+v", s)
	}
	want := strings.TrimSpace(strings.Repeat(strconv.Itoa(u.UID)+" ", 4))
	for _, m := range s.Members {
		if st := testproc.Status(m.PID); st["Uid"] != want {
			t.Errorf("postgres process %d %v runs as %q, want uid %d", m.PID, m.Cmdline, st["Uid"], u.UID)
		}
	}
	if err := exec.Command("pg_isready", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port)).Run(); err != nil {
		t.Fatalf("pg_isready after up: %v", err)
	}
	// The control: pg_isready fails where no server answers.
	if err := exec.Command("pg_isready", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(freePort(t))).Run(); err == nil {
		t.Fatal("pg_isready passes with no server: the preset's probe would prove nothing")
	}
	if out := e.must("stop", "db"); !strings.Contains(out, "0 left") {
		t.Fatalf("stop: %s", out)
	}
	if logs := e.must("logs", "db", "-n", "0"); !strings.Contains(logs, "received fast shutdown request") {
		t.Fatalf("postgres did not get its fast shutdown (SIGINT):\n%s", logs)
	}
	if left := testproc.OwnedBy(u.UID); len(left) > 0 {
		t.Fatalf("processes of %s left after the stop: %v", u.Name, left)
	}
}
