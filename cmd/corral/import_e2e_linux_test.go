package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/testproc"
)

// writeFiles writes name → content into e.dir; {exe} stands for the test
// binary, which runs the fixtures.
func (e *env) writeFiles(files map[string]string) {
	e.t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(strings.ReplaceAll(content, "{exe}", e.exe)), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

// importRun imports a file with corral import, starts the result with
// corral up, checks that every service runs (and that web answers on the
// port the import gave it), runs whileUp (if any), and shuts down
// verified, with nothing left.
func importRun(t *testing.T, e *env, args []string, extraEnv []string, webPort int, wantServices []string, whileUp func(toml []byte)) {
	t.Helper()
	cmd := e.command(append([]string{"import"}, args...)...)
	cmd.Env = append(cmd.Env, extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("corral import %v: %v\n%s", args, err, out.String())
	}
	if !strings.Contains(out.String(), "wrote corral.toml: "+strconv.Itoa(len(wantServices))+" services") {
		t.Fatalf("corral import said:\n%s", out.String())
	}
	toml, _ := os.ReadFile(filepath.Join(e.dir, "corral.toml"))
	e.must("up")
	for _, name := range wantServices {
		s := e.inspect(name)
		if s.State != "ready" || s.PID == 0 {
			t.Fatalf("%s after up: %+v\ncorral.toml:\n%s", name, s, toml)
		}
	}
	// The web server got the port the import assigned, through its env.
	// Without a ready probe (none of the sources has one) it is ready as it
	// runs, before it listens: give it a moment.
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/", webPort)); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("the imported web service does not answer on its port: %v\ncorral.toml:\n%s", err, toml)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok":true`) {
		t.Fatalf("web answered %d %q", resp.StatusCode, body)
	}
	if whileUp != nil {
		whileUp(toml)
	}
	ids := e.instances()
	if len(ids) < len(wantServices) {
		t.Fatalf("%d instances for %d services", len(ids), len(wantServices))
	}
	if o := e.must("shutdown"); !strings.Contains(o, "verified: 0 supervised processes remain") {
		t.Fatalf("shutdown said:\n%s", o)
	}
	for _, id := range ids {
		if left := testproc.Carriers(id); len(left) > 0 {
			t.Fatalf("instance %s left %v", id, left)
		}
	}
}

// waitLog waits until the last lines of a service's log contain want.
func (e *env) waitLog(name, want string) {
	e.t.Helper()
	var out string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if out = e.must("logs", name, "-n", "3"); strings.Contains(out, want) {
			return
		}
	}
	e.t.Fatalf("%s's log does not show %q:\n%s", name, want, out)
}

// A Procfile and its .env, as foreman runs them: web is the WebUI-like
// fixture tree (workers, a setsid daemon, a respawner) listening on $PORT,
// worker a shell loop reading a variable of the .env, which the import
// names as env_file: a changed .env reaches the next start, with no new
// import and no reload.
func TestE2EImportProcfileRuns(t *testing.T) {
	port := freePort(t)
	e := newEnv(t, "")
	e.writeFiles(map[string]string{
		"Procfile": "web: CORRAL_TESTPROC=webui exec {exe} webui --workers 2 --http 127.0.0.1:$PORT\n" +
			"worker: while :; do echo \"working on $QUEUE\"; sleep 0.2; done\n",
		".env": fmt.Sprintf("# foreman takes the base port from here\nPORT=%d\nQUEUE=\"default,mailers\"\nGORACE=atexit_sleep_ms=0\n", port),
	})
	importRun(t, e, []string{"Procfile", "--force"}, nil, port, []string{"web", "worker"}, func(toml []byte) {
		if !bytes.Contains(toml, []byte(`env_file = ".env"`)) || bytes.Contains(toml, []byte("QUEUE = ")) {
			t.Fatalf("the .env is not the services' env_file:\n%s", toml)
		}
		e.waitLog("worker", "working on default,mailers")
		e.writeFiles(map[string]string{".env": fmt.Sprintf("PORT=%d\nQUEUE=urgent\nGORACE=atexit_sleep_ms=0\n", port)})
		e.must("restart", "worker")
		e.waitLog("worker", "working on urgent")
	})
}

// A supervisord.conf with an [include], %(ENV_X)s, %(process_num)d,
// numprocs, priorities, environment= quoting, user= (the user running the
// test: any other needs root and access to the test binary), umask=, a
// [group:x], and settings corral does not need (stopasgroup) or have
// (stdout_logfile).
func TestE2EImportSupervisordRuns(t *testing.T) {
	port := freePort(t)
	e := newEnv(t, "")
	userLine, wantUser := "", ""
	if me, err := user.Current(); err == nil {
		userLine = "user=" + me.Username + "\n"
		wantUser = "conf.d/ui.conf:10: ui: user = " + me.Username + ": approximated: written as user = \"" + me.Username + "\""
	}
	if err := os.Mkdir(filepath.Join(e.dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.writeFiles(map[string]string{
		"supervisord.conf": "[supervisord]\nnodaemon=true\nenvironment=GORACE=\"atexit_sleep_ms=0\"\n\n[include]\nfiles = conf.d/*.conf\n",
		"conf.d/ui.conf": `[program:ui]
command={exe} webui --workers 1 --http 127.0.0.1:%(ENV_IMPORT_E2E_PORT)s
environment=CORRAL_TESTPROC="webui"
directory=%(here)s
priority=10
stopasgroup=true
killasgroup=true
stopwaitsecs=5
startsecs=1
` + userLine + `umask=027
stdout_logfile=/var/log/ui.log
`,
		"conf.d/ticker.conf": `[program:ticker]
command=/bin/sh -c "while :; do echo tick %(process_num)d $WHO; sleep 0.2; done"
process_name=%(program_name)s_%(process_num)d
numprocs=2
priority=20
environment=WHO="the ticker, %(program_name)s"
autorestart=true

[group:ticks]
programs=ticker
`,
	})
	importRun(t, e, []string{"supervisord", "supervisord.conf", "-o", "corral.toml", "--force", "--report", "import.txt"},
		[]string{"IMPORT_E2E_PORT=" + strconv.Itoa(port)}, port, []string{"ui", "ticker_0", "ticker_1"}, func(toml []byte) {
			e.waitLog("ticker_1", "tick 1 the ticker, ticker")
			// umask=027 reached the server: its own process has it.
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.inspect("ui").PID))
			if err != nil || !bytes.Contains(status, []byte("Umask:\t0027")) {
				t.Errorf("ui's umask is not 027 (%v):\n%s\ncorral.toml:\n%s", err, status, toml)
			}
			// [group:ticks] is @ticks.
			if out := e.must("status", "@ticks"); !strings.Contains(out, "ticker_0") || !strings.Contains(out, "ticker_1") || strings.Contains(out, "ui ") {
				t.Errorf("corral status @ticks:\n%s", out)
			}
		})
	rep, err := os.ReadFile(filepath.Join(e.dir, "import.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{wantUser, "conf.d/ui.conf:6: ui: stopasgroup = true: not needed",
		"conf.d/ticker.conf:5: ticker_0: priority = 20: approximated: written as after = [\"ui\"]"} {
		if !bytes.Contains(rep, []byte(want)) {
			t.Errorf("the report lacks %q:\n%s", want, rep)
		}
	}
}

// The exit codes and messages of corral import: 2 for input it cannot
// read (with file:line), 1 for an existing file without --force and for a
// file that would not load here; nothing written in either of the first.
func TestImportCLI(t *testing.T) {
	e := newEnv(t, "# mine\n")
	e.writeFiles(map[string]string{
		"Procfile":      "web: run\n",
		"bad.conf":      "[program:a]\ncommand=date +%Y\n",
		"elsewhere.ini": "[program:a]\ncommand=run\ndirectory=/no/such/dir\n",
		"run.sh":        "#!/bin/sh\n",
	})
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"import", "Procfile"}, 1, "corral.toml exists already; nothing was written: pass --force"},
		{[]string{"import", "missing/Procfile", "--force"}, 2, "no such file or directory; nothing was written"},
		{[]string{"import", "bad.conf", "-o", "x.toml"}, 2, "import: bad.conf:2: command: a % that is not %(name)s"},
		{[]string{"import", "run.sh"}, 2, "cannot tell the format from the name; give it: corral import supervisord|procfile|pm2 run.sh"},
		{[]string{"import", "foreman", "Procfile"}, 2, "unknown format; give supervisord, procfile or pm2"},
		{[]string{"import", "elsewhere.ini", "-o", "e.toml"}, 1, "e.toml was written, but corral would not load it here"},
	} {
		out, code := e.corral(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("corral %v exited %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "corral.toml")); string(b) != "# mine\n" {
		t.Errorf("corral.toml was changed without --force: %q", b)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "x.toml")); err == nil {
		t.Error("x.toml was written from input that could not be read")
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "e.toml")); !bytes.Contains(b, []byte(`dir = "/no/such/dir"`)) {
		t.Errorf("e.toml: %q", b)
	}

	// -o - writes the file to stdout and the report to stderr.
	cmd := e.command("import", "Procfile", "-o", "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "# Imported by `corral import procfile` from Procfile.") || !strings.Contains(stdout.String(), "[services.web]") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "corral import procfile: 1 service from Procfile") || !strings.Contains(stderr.String(), "wrote the file on stdout") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

// The JavaScript form, evaluated by the node of this machine.
func TestImportPM2JavaScriptCLI(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed (Debian: apt-get install nodejs): ecosystem.config.js cannot be evaluated")
	}
	e := newEnv(t, "")
	e.writeFiles(map[string]string{
		"ecosystem.config.js": "module.exports = { apps: [{ name: 'api', script: 'server.js', env: { PORT: 3000 + 1 }, env_production: { NODE_ENV: 'production' } }] };\n",
		"server.js":           "\n",
	})
	out, code := e.corral("import", "ecosystem.config.js", "--force", "--env", "production")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	b, _ := os.ReadFile(filepath.Join(e.dir, "corral.toml"))
	for _, want := range []string{`command = ["node", "server.js"]`, `PORT = "3001"`, `NODE_ENV = "production"`, `stop = { signal = "INT", grace = "1600ms" }`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("corral.toml lacks %s:\n%s", want, b)
		}
	}
}
