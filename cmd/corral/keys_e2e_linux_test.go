package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/testproc"
)

// The keys of issue 15, part 1, end to end with the built CLI and daemon
// and real processes: user/group, umask/nice, env_file, include, groups
// and the list form of ready.

// waitMembers waits until the service runs n processes and returns it.
func waitMembers(t *testing.T, e *env, name string, n int) client.Service {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := e.inspect(name)
		if s.MemberCount == n && len(s.Members) == n {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d members, want %d: %+v", name, s.MemberCount, n, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sharedDir is a directory another user may enter (t.TempDir's are 0700).
func sharedDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "corral-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The tree of a service with user = runs as that user, every process of
// it (a setsid escapee too), in both containment tiers; the login
// variables are the user's unless env sets them; what it writes is the
// user's; stop leaves no process of the user.
func TestE2EUserServiceRunsAsThatUser(t *testing.T) {
	u := testproc.User(t)
	for _, tier := range []string{"cgroup", "pgroup"} {
		t.Run(tier, func(t *testing.T) {
			work := sharedDir(t)
			if err := os.Chown(work, u.UID, u.GID); err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, fmt.Sprintf(`
[services.asuser]
shell = "echo hello > owned.txt; sleep 300 & setsid sleep 301 & wait"
dir = %q
user = %q
env = { LOGNAME = "from-env" }
stop = { grace = "2s" }
`, work, u.Name))
			out, code := e.corral("--containment", tier, "up")
			if code != 0 {
				if tier == "cgroup" && strings.Contains(out, "cgroup") {
					t.Skipf("no cgroup v2 here: %s", out)
				}
				t.Fatalf("up: %d\n%s", code, out)
			}
			s := waitMembers(t, e, "asuser", 3)
			if !strings.HasPrefix(s.Mechanism, tier) && !(tier == "cgroup" && strings.HasPrefix(s.Mechanism, "cgroup")) {
				t.Fatalf("mechanism %s, want %s", s.Mechanism, tier)
			}
			want := strings.TrimSpace(strings.Repeat(strconv.Itoa(u.UID)+" ", 4))
			for _, m := range s.Members {
				st := testproc.Status(m.PID)
				if st["Uid"] != want || !strings.HasPrefix(st["Gid"], strconv.Itoa(u.GID)+" ") {
					t.Errorf("pid %d %v: Uid %q Gid %q, want uid %d gid %d", m.PID, m.Cmdline, st["Uid"], st["Gid"], u.UID, u.GID)
				}
				env := testproc.Environ(m.PID)
				if env["HOME"] != u.Home || env["USER"] != u.Name || env["LOGNAME"] != "from-env" || env["SHELL"] != "/bin/sh" {
					t.Errorf("pid %d: HOME=%q USER=%q LOGNAME=%q SHELL=%q", m.PID, env["HOME"], env["USER"], env["LOGNAME"], env["SHELL"])
				}
				if env["CORRAL_INSTANCE"] != s.Instance {
					t.Errorf("pid %d lost the instance marker: %q", m.PID, env["CORRAL_INSTANCE"])
				}
			}
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(work, "owned.txt"), &st); err != nil || int(st.Uid) != u.UID || int(st.Gid) != u.GID {
				t.Fatalf("owned.txt: %v, owner %d:%d, want %d:%d", err, st.Uid, st.Gid, u.UID, u.GID)
			}
			out = e.must("stop", "asuser")
			if !strings.Contains(out, "0 left") {
				t.Fatalf("stop said: %s", out)
			}
			if left := testproc.OwnedBy(u.UID); len(left) > 0 {
				t.Fatalf("processes of %s left after the stop: %v", u.Name, left)
			}
		})
	}
}

// Without root, user = another user and a higher priority are refused at
// load with what to do, and user = the daemon's own user is accepted:
// corral check run as the test user.
func TestE2EUserRefusedWithoutRoot(t *testing.T) {
	u := testproc.User(t)
	dir := sharedDir(t)
	exe := filepath.Join(dir, "corral")
	copyFile(t, e2eExe(t), exe, 0o755)
	check := func(body string) (string, int) {
		cfg := filepath.Join(dir, "corral.toml")
		if err := os.WriteFile(cfg, []byte("[services.a]\ncommand = [\"sleep\", \"1\"]\n"+body+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("runuser", "-u", u.Name, "--", exe, "-c", cfg, "check")
		cmd.Env = append(os.Environ(), asCorral+"=1")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := check(`user = "root"`)
	if want := fmt.Sprintf(`corral.toml:3:1: services.a.user: running as "root" needs corral to run as root, and it runs as %s (uid %d); start the daemon as root, or remove user to run the service as %s`, u.Name, u.UID, u.Name); code != 2 || !strings.Contains(out, want) {
		t.Fatalf("user = root as %s: exit %d\n%s\nwant %s", u.Name, code, out, want)
	}
	out, code = check(`nice = -5`)
	if want := `services.a.nice: -5 is a higher priority than corral's own (nice 0), which needs corral to run as root; use 0..19, or run the daemon as root`; code != 2 || !strings.Contains(out, want) {
		t.Fatalf("nice = -5 as %s: exit %d\n%s", u.Name, code, out)
	}
	if out, code = check(fmt.Sprintf("user = %q\nnice = 5", u.Name)); code != 0 {
		t.Fatalf("its own user: exit %d\n%s", code, out)
	}
}

func e2eExe(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// umask and nice reach every process of the tree from its first
// instruction; a service without them keeps the daemon's (the control).
func TestE2EUmaskAndNice(t *testing.T) {
	old := syscall.Umask(0o022)
	syscall.Umask(old)
	neg := ""
	if os.Geteuid() == 0 {
		neg = "\n[services.raised]\nshell = \"sleep 300 & wait\"\nnice = -3\n"
	}
	e := newEnv(t, `
[services.masked]
shell = "echo x > masked.txt; mkdir masked.d; sleep 300 & wait"
umask = "027"
nice = 7

[services.plain]
shell = "echo x > plain.txt; sleep 300 & wait"
`+neg)
	e.must("up")
	for name, want := range map[string]int{"masked": 7, "plain": 0} {
		s := waitMembers(t, e, name, 2)
		for _, m := range s.Members {
			if n, ok := testproc.Nice(m.PID); !ok || n != want {
				t.Errorf("%s pid %d %v: nice %d, want %d", name, m.PID, m.Cmdline, n, want)
			}
		}
	}
	if neg != "" {
		for _, m := range waitMembers(t, e, "raised", 2).Members {
			if n, _ := testproc.Nice(m.PID); n != -3 {
				t.Errorf("raised pid %d: nice %d, want -3", m.PID, n)
			}
		}
	}
	mode := func(name string) os.FileMode {
		st, err := os.Stat(filepath.Join(e.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	if m := mode("masked.txt"); m != 0o640 {
		t.Errorf("masked.txt: mode %o, want 640 (umask 027)", m)
	}
	if m := mode("masked.d"); m != 0o750 {
		t.Errorf("masked.d: mode %o, want 750 (umask 027)", m)
	}
	if m, want := mode("plain.txt"), os.FileMode(0o666)&^os.FileMode(old); m != want {
		t.Errorf("plain.txt: mode %o, want %o (the daemon's umask %03o)", m, want, old)
	}
	// The wrapper that sets the umask exec'd the program in place: the
	// leader's command line is the service's own.
	s := e.inspect("masked")
	for _, m := range s.Members {
		if m.PID == s.PID && !strings.Contains(strings.Join(m.Cmdline, " "), "masked.txt") {
			t.Errorf("leader's command line %q", m.Cmdline)
		}
	}
}

// env_file: read at each start (a changed file needs no reload), below
// env; the values reach the processes and nothing else: not the status,
// not the events, not a diagnostic bundle.
func TestE2EEnvFile(t *testing.T) {
	const secret = "zq-secret-7781-value"
	e := newEnv(t, `
[services.app]
shell = "exec sleep 300"
env_file = [".env", { path = "local.env", optional = true }]
env = { OVER = "from-env" }
`)
	envPath := filepath.Join(e.dir, ".env")
	os.WriteFile(envPath, []byte("# app settings\nSECRET_TOKEN="+secret+"\nexport QUOTED='a b # c'\nOVER=from-file\n"), 0o600)
	e.must("up")
	s := e.inspect("app")
	env := testproc.Environ(s.PID)
	if env["SECRET_TOKEN"] != secret || env["QUOTED"] != "a b # c" || env["OVER"] != "from-env" {
		t.Fatalf("environment: SECRET_TOKEN=%q QUOTED=%q OVER=%q", env["SECRET_TOKEN"], env["QUOTED"], env["OVER"])
	}
	// Nowhere but in the process (the control above: it is there).
	for _, args := range [][]string{{"status", "app", "--json"}, {"status", "--json"}, {"events", "--json", "-n", "0"}, {"check", "--json"}} {
		if out := e.must(args...); strings.Contains(out, secret) {
			t.Errorf("corral %v shows the env file's value:\n%s", args, out)
		}
	}
	bundle := strings.TrimSpace(e.must("bundle"))
	files := untar(t, bundle)
	if _, ok := files["corral.toml"]; !ok || len(files) < 3 {
		t.Fatalf("bundle %s has %d files", bundle, len(files))
	}
	for name, body := range files {
		if strings.Contains(body, secret) {
			t.Errorf("bundle file %s holds the env file's value", name)
		}
	}

	// A changed file, and a new optional one, at the next start: no reload.
	os.WriteFile(envPath, []byte("SECRET_TOKEN=changed\n"), 0o600)
	os.WriteFile(filepath.Join(e.dir, "local.env"), []byte("LOCAL=1\n"), 0o600)
	e.must("restart", "app")
	env = testproc.Environ(e.inspect("app").PID)
	if env["SECRET_TOKEN"] != "changed" || env["LOCAL"] != "1" || env["QUOTED"] != "" {
		t.Fatalf("after restart: SECRET_TOKEN=%q LOCAL=%q QUOTED=%q", env["SECRET_TOKEN"], env["LOCAL"], env["QUOTED"])
	}

	// A required file gone: the start is refused, naming it; check says
	// where the configuration names it.
	os.Remove(envPath)
	out, code := e.corral("restart", "app")
	if code == 0 || !strings.Contains(out, "env_file "+envPath+" does not exist; create it, or mark it optional") {
		t.Fatalf("restart without .env: exit %d\n%s", code, out)
	}
	out, code = e.corral("check")
	if code != 2 || !strings.Contains(out, "corral.toml:4:13: services.app.env_file[0]: .env does not exist; create it, or write { path = \".env\", optional = true } to start without it") {
		t.Fatalf("check without .env: exit %d\n%s", code, out)
	}
	// A line it cannot read: the file and the line.
	os.WriteFile(envPath, []byte("OK=1\nnot a variable\n"), 0o600)
	out, code = e.corral("check")
	if code != 2 || !strings.Contains(out, `.env:2:1: expected NAME=value, found "not a variable" (env_file of services.app)`) {
		t.Fatalf("check with a bad .env: exit %d\n%s", code, out)
	}
}

func untar(t *testing.T, path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b)
	}
}

// include and groups: corral check, the daemon and a reload see one merged
// configuration; @GROUP stands for its services in start, status, logs,
// restart and stop; an unknown group is a usage error with a hint; a bad
// included file is reported at its own line and a reload of it changes
// nothing.
func TestE2EIncludeAndGroups(t *testing.T) {
	e := newEnv(t, `
include = ["conf.d/*.toml"]
groups = { sd = ["webui", "comfy"] }

[services.other]
shell = "exec sleep 300"
autostart = false
`)
	svc := func(name string) string {
		return fmt.Sprintf("[services.%s]\nshell = \"echo hi-$CORRAL_SERVICE; exec sleep 300\"\nautostart = false\nstop = { grace = \"2s\" }\n", name)
	}
	conf := filepath.Join(e.dir, "conf.d")
	os.Mkdir(conf, 0o755)
	os.WriteFile(filepath.Join(conf, "10-webui.toml"), []byte(svc("webui")), 0o644)
	os.WriteFile(filepath.Join(conf, "20-comfy.toml"), []byte(svc("comfy")), 0o644)
	out := e.must("check")
	if !strings.Contains(out, "3 services") || !strings.Contains(out, "with 2 included files") || !strings.Contains(out, "group @sd: webui, comfy") {
		t.Fatalf("check:\n%s", out)
	}
	e.must("up")
	e.must("start", "@sd", "--wait")
	for name, want := range map[string]string{"webui": "ready", "comfy": "ready", "other": "stopped"} {
		if s := e.inspect(name); s.State != want {
			t.Fatalf("after start @sd: %s is %s, want %s", name, s.State, want)
		}
	}
	out = e.must("status", "@sd")
	if !strings.Contains(out, "webui") || !strings.Contains(out, "comfy") || strings.Contains(out, "other") {
		t.Fatalf("status @sd:\n%s", out)
	}
	before := e.inspect("webui").Instance
	e.must("restart", "@sd")
	if after := e.inspect("webui"); after.Instance == before || after.State == "stopped" {
		t.Fatalf("restart @sd did not restart webui: %+v", after)
	}
	deadline := time.Now().Add(10 * time.Second)
	for out = e.must("logs", "@sd", "-n", "10"); !strings.Contains(out, "comfy | hi-comfy") || !strings.Contains(out, "webui | hi-webui"); out = e.must("logs", "@sd", "-n", "10") {
		if time.Now().After(deadline) {
			t.Fatalf("logs @sd:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out = e.must("stop", "@sd")
	if strings.Count(out, "0 left") != 2 {
		t.Fatalf("stop @sd:\n%s", out)
	}
	out, code := e.corral("stop", "@ds")
	if code != 2 || !strings.Contains(out, `unknown group "ds" (did you mean "sd"?) (groups: sd)`) {
		t.Fatalf("stop @ds: exit %d\n%s", code, out)
	}

	// A new included file: a reload picks it up.
	late := filepath.Join(conf, "30-late.toml")
	os.WriteFile(late, []byte(svc("late")), 0o644)
	e.must("reload")
	if s := e.inspect("late"); s.Name != "late" {
		t.Fatalf("late after reload: %+v", s)
	}
	// A bad one: check and reload name it at its line; nothing changes.
	os.WriteFile(late, []byte(svc("late")+"comand = [\"x\"]\n"), 0o644)
	want := filepath.Join("conf.d", "30-late.toml") + `:5:1: services.late.comand: unknown key (did you mean "command"?)`
	if out, code := e.corral("check"); code != 2 || !strings.Contains(out, want) {
		t.Fatalf("check with a bad included file: exit %d\n%s", code, out)
	}
	if out, code := e.corral("reload"); code == 0 || !strings.Contains(out, want) {
		t.Fatalf("reload with a bad included file: exit %d\n%s", code, out)
	}
	if s := e.inspect("late"); s.Name != "late" {
		t.Fatalf("the refused reload changed something: %+v", s)
	}
}

// ready = [ ... ]: every probe must pass. The control: a list whose log
// probe never matches is not ready though its HTTP probe passes.
func TestE2EReadyListAllMustPass(t *testing.T) {
	port, port2 := freePort(t), freePort(t)
	e := newEnv(t, fmt.Sprintf(`
[services.both]
shell = "{exe} 127.0.0.1:%[1]d 200ms"
env = { CORRAL_TESTPROC = "lateserver", GORACE = "atexit_sleep_ms=0" }
ready = [
  { http = "http://127.0.0.1:%[1]d/", interval = "20ms" },
  { log = "listening on", timeout = "20s" },
]
autostart = false

[services.never]
shell = "{exe} 127.0.0.1:%[2]d 0s"
env = { CORRAL_TESTPROC = "lateserver", GORACE = "atexit_sleep_ms=0" }
ready = [{ http = "http://127.0.0.1:%[2]d/", interval = "20ms" }, { log = "never printed", timeout = "1s" }]
restart = { policy = "never" }
autostart = false
`, port, port2))
	e.must("up")
	out := e.must("ensure", "both", "--timeout", "30s")
	if !strings.Contains(out, "both: ready") {
		t.Fatalf("ensure both: %s", out)
	}
	out, code := e.corral("ensure", "never", "--timeout", "30s")
	if code == 0 || !strings.Contains(out, `ready[1]: not ready after 1s: probe: no output line matched "never printed"`) {
		t.Fatalf("ensure never: exit %d\n%s", code, out)
	}
}
