package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/render"
)

// cli runs the CLI in-process and returns what it wrote to stdout and
// stderr, and its exit code.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runIO(args, &out, &errb)
	return out.String(), errb.String(), code
}

// writeConfig writes a corral.toml into a new directory and returns its path.
func writeConfig(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "corral.toml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantOutput(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got:\n%s\nwant:\n%s", what, got, want)
	}
}

const twoServices = `[services.webui]
preset = "a1111"
shell = "bash webui.sh --api"
profiles = { lowvram = ["--medvram-sdxl"], guarded = ["--lowvram"] }

[services.proxy]
command = ["caddy", "reverse-proxy", "--from", ":8080", "--to", "127.0.0.1:7860"]
after = ["webui"]
autostart = false
ready = { tcp = "127.0.0.1:8080", timeout = "10s" }
`

func TestCheckValid(t *testing.T) {
	cfg := writeConfig(t, twoServices)
	out, errs, code := cli(t, "-c", cfg, "check")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	wantOutput(t, "check", out, cfg+` is valid: 2 services, 1 started by corral up
SERVICE  STARTS                  PROFILES          READY WHEN                                                                  COMMAND
proxy    on demand, after webui  -                 tcp 127.0.0.1:8080                                                          caddy reverse-proxy --from :8080 --to 127.0.0.1:7860
webui    with up                 guarded, lowvram  a1111: http://127.0.0.1:7860/sdapi/v1/options + log "Running on local URL"  bash webui.sh --api
`)
	// Nothing was started: check needs no daemon and makes no state.
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), ".corral")); !os.IsNotExist(err) {
		t.Errorf("check made a state directory: %v", err)
	}

	out, _, code = cli(t, "-c", cfg, "check", "--json")
	var rep checkJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.Valid || len(rep.Services) != 2 || rep.Services[1].Name != "webui" ||
		rep.Services[1].Preset != "a1111" || len(rep.Errors) != 0 || rep.Errors == nil {
		t.Errorf("check --json (exit %d): %+v, %v\n%s", code, rep, err, out)
	}
}

// A bad file: every problem with file:line:col in the user's words, a
// summary, exit 2; the same rules (config.Load) as the daemon.
func TestCheckInvalid(t *testing.T) {
	cfg := writeConfig(t, `[services.web]
command = ["python", "main.py"]
comand = "x"
ready = "http://127.0.0.1:8188/"

[service.x]
shell = "y"
`)
	out, errs, code := cli(t, "-c", cfg, "check")
	if code != exitUsage || out != "" {
		t.Errorf("exit %d (want 2), stdout %q", code, out)
	}
	wantOutput(t, "stderr", errs, fmt.Sprintf(`corral: %[1]s:3:1: services.web.comand: unknown key (did you mean "command"?); docs/configuration.md lists every key
corral: %[1]s:4:9: services.web.ready: expected a table ({ http = "..." }) or a list of them ([{ http = "..." }, { log = "..." }]), found a string ("http://127.0.0.1:8188/")
corral: %[1]s:6:1: service: unknown key (did you mean "services"?); docs/configuration.md lists every key
corral: %[1]s: 3 errors; fix it and run corral check again
`, cfg))

	out, _, code = cli(t, "-c", cfg, "check", "--json")
	var rep checkJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitUsage || rep.Valid || len(rep.Errors) == 0 ||
		rep.Errors[0].Line == 0 || rep.Services == nil {
		t.Errorf("check --json of a bad file (exit %d): %+v %v", code, rep, err)
	}

	_, errs, code = cli(t, "-c", filepath.Join(t.TempDir(), "none.toml"), "check")
	if code != exitUsage || !strings.HasPrefix(errs, "corral: no configuration file ") || !strings.HasSuffix(errs, "): write one with: corral init; or name another with -c FILE\n") {
		t.Errorf("missing file: exit %d, %q", code, errs)
	}
}

// corral up runs the same check first and, on a bad file, starts nothing.
func TestUpStopsAtABadConfig(t *testing.T) {
	cfg := writeConfig(t, "[services.web]\ncommand = \"python main.py\"\n")
	out, errs, code := cli(t, "-c", cfg, "up")
	if code != exitUsage || out != "" {
		t.Errorf("exit %d (want 2), stdout %q", code, out)
	}
	wantOutput(t, "stderr", errs, fmt.Sprintf(`corral: %[1]s:2:11: services.web.command: expected a list of strings (["program", "arg"]), found a string ("python main.py")
corral: %[1]s: 1 error; nothing was started or changed: fix it and run corral up again
`, cfg))
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), ".corral")); !os.IsNotExist(err) {
		t.Errorf("up on a bad file made a state directory (started a daemon?): %v", err)
	}
}

func TestInitFindsWebUI(t *testing.T) {
	dir := t.TempDir()
	sd := filepath.Join(dir, "stable-diffusion-webui")
	for _, d := range []string{sd, filepath.Join(sd, "modules")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"webui.sh", "launch.py"} {
		os.WriteFile(filepath.Join(sd, f), nil, 0o644)
	}
	cfg := filepath.Join(dir, "corral.toml")
	out, errs, code := cli(t, "-c", cfg, "init", sd)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	wantOutput(t, "stdout", out, "wrote "+cfg+" (service webui); check it with: corral check; start it with: corral up\n")
	wantOutput(t, "stderr", errs, "corral: found Stable Diffusion WebUI (AUTOMATIC1111) in "+sd+" (webui.sh, launch.py, modules/): service \"webui\" uses preset a1111\n")
	f, err := config.Load(cfg)
	if err != nil {
		t.Fatalf("the written file does not pass corral check: %v", err)
	}
	w := f.Services["webui"]
	if w == nil || w.Preset != "a1111" || w.Dir != sd || w.Stop.Hook == nil || w.HookFor(w.Argv) == nil || len(w.Profiles["lowvram"]) == 0 {
		t.Errorf("webui: %+v", w)
	}
	if _, _, code := cli(t, "-c", cfg, "check"); code != 0 {
		t.Errorf("corral check of the written file exited %d", code)
	}

	// An existing file is never replaced without --force.
	before, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte("# mine\n"), 0o644)
	_, errs, code = cli(t, "-c", cfg, "init", sd)
	if code != exitFailure {
		t.Errorf("init over an existing file exited %d", code)
	}
	wantOutput(t, "stderr", errs, "corral: init: "+cfg+" exists already; nothing was written: pass --force to replace it, or -c FILE to write another file\n")
	if b, _ := os.ReadFile(cfg); string(b) != "# mine\n" {
		t.Errorf("the existing file was changed: %q", b)
	}
	if _, errs, code := cli(t, "-c", cfg, "init", sd, "--force"); code != 0 {
		t.Fatalf("init --force exited %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(cfg); string(b) != string(before) {
		t.Errorf("--force wrote another file:\n%s", b)
	}

	// Forge: the WebUI with modules_forge/.
	os.Mkdir(filepath.Join(sd, "modules_forge"), 0o755)
	_, errs, _ = cli(t, "-c", cfg, "init", sd, "--force")
	wantOutput(t, "stderr", errs, "corral: found Stable Diffusion WebUI Forge in "+sd+" (webui.sh, launch.py, modules/, modules_forge/): service \"forge\" uses preset forge\n")
	if f, err := config.Load(cfg); err != nil || f.Services["forge"] == nil || f.Services["forge"].Preset != "forge" {
		t.Errorf("forge: %v", err)
	}
}

func TestInitFindsComfyUI(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "comfy"), 0o755)
	os.WriteFile(filepath.Join(dir, "main.py"), nil, 0o644)
	cfg := filepath.Join(dir, "corral.toml")
	out, errs, code := cli(t, "-c", cfg, "init") // DIR defaults to the file's directory
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	wantOutput(t, "stdout", out, "wrote "+cfg+" (service comfyui); check it with: corral check; start it with: corral up\n")
	wantOutput(t, "stderr", errs, "corral: found ComfyUI in "+dir+" (main.py, comfy/): service \"comfyui\" uses preset comfyui\n")
	f, err := config.Load(cfg)
	if err != nil {
		t.Fatalf("the written file does not pass corral check: %v", err)
	}
	c := f.Services["comfyui"]
	if c == nil || c.Lifetime != config.LifetimeHandover || c.Dir != dir || c.Argv[len(c.Argv)-1] != "main.py" {
		t.Errorf("comfyui: %+v", c)
	}
}

func TestInitExample(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "corral.toml")
	out, errs, code := cli(t, "-c", cfg, "init")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	wantOutput(t, "stdout", out, "wrote "+cfg+" (service app); check it with: corral check; start it with: corral up\n")
	wantOutput(t, "stderr", errs, "corral: no WebUI or ComfyUI checkout in "+dir+" (looked for webui.sh or webui.bat beside launch.py and modules/, and main.py beside comfy/): wrote an example service \"app\" to edit\n")
	if _, err := config.Load(cfg); err != nil {
		t.Fatalf("the written file does not pass corral check: %v", err)
	}
	b, _ := os.ReadFile(cfg)
	if !strings.Contains(string(b), "# docs/configuration.md") && !strings.Contains(string(b), "docs/configuration.md") {
		t.Errorf("the file is not commented:\n%s", b)
	}

	// A preset asked for by name, where there is none to find.
	cfg2 := filepath.Join(dir, "comfy.toml")
	_, errs, code = cli(t, "-c", cfg2, "init", "--preset", "comfyui")
	if code != 0 {
		t.Fatalf("--preset comfyui exited %d: %s", code, errs)
	}
	wantOutput(t, "--preset stderr", errs, "corral: service \"comfyui\" uses preset comfyui (--preset), running in "+dir+"\n")
	if f, err := config.Load(cfg2); err != nil || f.Services["comfyui"] == nil {
		t.Errorf("--preset comfyui: %v", err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"init", "--preset", "a111"}, `corral: init --preset "a111": unknown preset (did you mean "a1111"?) (known: a1111, forge, comfyui, none)` + "\n"},
		{[]string{"init", filepath.Join(dir, "nope")}, "corral: init " + filepath.Join(dir, "nope") + ": not a directory: give the directory of the program (its checkout)\n"},
	} {
		_, errs, code := cli(t, append([]string{"-c", filepath.Join(dir, "other.toml")}, tc.args...)...)
		if code != exitUsage {
			t.Errorf("%v exited %d, want 2", tc.args, code)
		}
		wantOutput(t, fmt.Sprint(tc.args), errs, tc.want)
	}
}

// Without a daemon, every command that needs one says so, with the corral
// up that starts one for the same file and state directory (exit 4); stop
// and shutdown, with nothing to act on, say that instead.
func TestNoDaemonMessages(t *testing.T) {
	cfg := writeConfig(t, twoServices)
	state := filepath.Join(filepath.Dir(cfg), ".corral")
	noDaemon := fmt.Sprintf("corral: client: no corral daemon is running for %s (no socket %s): start one with: corral -c %s up\n", state, ipc.Path(state), cfg)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status"}, noDaemon},
		{[]string{"status", "webui"}, noDaemon},
		{[]string{"ensure", "webui"}, noDaemon},
		{[]string{"start", "webui"}, "corral: start webui: " + strings.TrimPrefix(noDaemon, "corral: ")},
		{[]string{"restart", "webui"}, "corral: restart webui: " + strings.TrimPrefix(noDaemon, "corral: ")},
		{[]string{"reload"}, noDaemon},
		{[]string{"bundle"}, noDaemon},
		{[]string{"events"}, noDaemon}, // no journal on disk yet
		{[]string{"logs", "webui"}, noDaemon},
		{[]string{"health", "webui"}, noDaemon},
		{[]string{"stop", "webui"}, "corral: no corral daemon is running for " + state + ": nothing runs under it to stop (what an earlier run left behind, corral reap finds and stops)\n"},
		{[]string{"shutdown"}, "corral: no corral daemon is running for " + state + ": nothing to shut down (what an earlier run left behind, corral reap finds and stops)\n"},
	} {
		_, errs, code := cli(t, append([]string{"-c", cfg}, tc.args...)...)
		if code != exitNoDaemon {
			t.Errorf("%v exited %d, want 4", tc.args, code)
		}
		wantOutput(t, fmt.Sprint(tc.args), errs, tc.want)
	}
	// The default file and state directory: plain corral up.
	wd, _ := os.Getwd()
	os.Chdir(filepath.Dir(cfg))
	defer os.Chdir(wd)
	_, errs, _ := cli(t, "status")
	wantOutput(t, "status in the file's directory", errs, strings.Replace(noDaemon, "corral -c "+cfg+" up", "corral up", 1))
	other := t.TempDir()
	_, errs, _ = cli(t, "--state-dir", other, "status")
	wantOutput(t, "status --state-dir", errs, fmt.Sprintf("corral: client: no corral daemon is running for %s (no socket %s): start one with: corral --state-dir %s up\n", other, ipc.Path(other), other))
}

// events and logs read the files on disk when no daemon runs, and say so.
func TestEventsAndLogsWithoutDaemon(t *testing.T) {
	cfg := writeConfig(t, twoServices)
	state := filepath.Join(filepath.Dir(cfg), ".corral")
	if err := os.MkdirAll(filepath.Join(state, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	j, err := journal.OpenFile(filepath.Join(state, journal.FileName))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.Local)
	for i, e := range []journal.Event{
		{Kind: journal.Daemon, Message: "daemon 1 started"},
		{Kind: journal.Spawn, Service: "webui", Instance: "i1", PID: 42, Message: "started bash webui.sh (pid 42, pgroup)"},
		{Kind: journal.Ready, Service: "webui", Instance: "i1", Message: "ready"},
	} {
		e.Seq, e.Time = uint64(i+1), at.Add(time.Duration(i)*time.Second)
		if err := j.Append(e, true); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	// The live file and a rotated copy, as lumberjack names it.
	os.WriteFile(filepath.Join(state, "logs", "webui-2026-01-01T10-00-00.000.log"), []byte("old 1\nold 2\n"), 0o600)
	os.WriteFile(filepath.Join(state, "logs", "webui.log"), []byte("Running on local URL: http://127.0.0.1:7860\nModel loaded\n"), 0o600)

	out, errs, code := cli(t, "-c", cfg, "events", "-n", "2")
	if code != 0 {
		t.Fatalf("events exited %d: %s", code, errs)
	}
	wantOutput(t, "events", out, "15:04:06.000 spawn     webui      started bash webui.sh (pid 42, pgroup)\n15:04:07.000 ready     webui      ready\n")
	wantOutput(t, "events stderr", errs, "corral: the daemon is not running; these events are from the journal on disk ("+filepath.Join(state, journal.FileName)+")\n")

	_, errs, _ = cli(t, "-c", cfg, "events", "-f")
	wantOutput(t, "events -f stderr", errs, "corral: the daemon is not running; these events are from the journal on disk ("+filepath.Join(state, journal.FileName)+"); not following: nothing is written there until a daemon runs (start one with: corral -c "+cfg+" up)\n")

	out, errs, code = cli(t, "-c", cfg, "logs", "webui", "-n", "3")
	if code != 0 {
		t.Fatalf("logs exited %d: %s", code, errs)
	}
	wantOutput(t, "logs", out, "old 2\nRunning on local URL: http://127.0.0.1:7860\nModel loaded\n")
	wantOutput(t, "logs stderr", errs, "corral: the daemon is not running; these lines of webui are from its log file on disk ("+filepath.Join(state, "logs", "webui.log")+")\n")
	out, _, _ = cli(t, "-c", cfg, "logs", "webui", "-n", "0", "--json")
	if n := strings.Count(out, "\n"); n != 4 || !strings.Contains(out, `"text":"old 1"`) {
		t.Errorf("logs -n 0 --json:\n%s", out)
	}

	// An unknown service is a usage error, with a hint from the file.
	_, errs, code = cli(t, "-c", cfg, "logs", "webiu")
	if code != exitUsage {
		t.Errorf("logs of an unknown service exited %d", code)
	}
	wantOutput(t, "unknown service", errs, `corral: unknown service "webiu" (did you mean "webui"?) (configured: proxy, webui)`+"\n")
	// A service of the file that never ran has no file: no daemon.
	_, _, code = cli(t, "-c", cfg, "logs", "proxy")
	if code != exitNoDaemon {
		t.Errorf("logs of a service that never ran exited %d", code)
	}
}

// Shell completion: service and profile names from the file, read
// leniently, and never a daemon.
func TestCompletion(t *testing.T) {
	cfg := writeConfig(t, twoServices+"\n[services.half]\ncomand = 3\nprofiles = { p1 = [] }\n") // invalid, still completes
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "stop", ""}, "half\nproxy\nwebui\n:4\n"},
		{[]string{"__complete", "stop", "webui", ""}, "half\nproxy\n:4\n"},
		{[]string{"__complete", "ensure", "w"}, "webui\n:4\n"},
		{[]string{"__complete", "ensure", "webui", ""}, ":4\n"}, // one service only
		{[]string{"__complete", "restart", "webui", "--profile", ""}, "guarded\nlowvram\n:4\n"},
		{[]string{"__complete", "start", "--profile", ""}, "guarded\nlowvram\np1\n:4\n"},
		{[]string{"__complete", "logs", "pr"}, "proxy\n:4\n"},
		{[]string{"__complete", "up", "--containment", ""}, "auto\ncgroup\npgroup\n:4\n"},
		{[]string{"__complete", "init", "--preset", ""}, "a1111\nforge\ncomfyui\nnone\n:4\n"},
	} {
		out, _, code := cli(t, append([]string{"-c", cfg}, tc.args...)...)
		if code != 0 {
			t.Errorf("%v exited %d", tc.args, code)
		}
		wantOutput(t, fmt.Sprint(tc.args), out, tc.want)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), ".corral")); !os.IsNotExist(err) {
		t.Errorf("completion made a state directory (started a daemon?): %v", err)
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, _, code := cli(t, "completion", shell)
		if code != 0 || !strings.Contains(out, "corral") {
			t.Errorf("completion %s: exit %d, %d bytes", shell, code, len(out))
		}
	}
	_, errs, code := cli(t, "completion", "tcsh")
	if code != exitUsage {
		t.Errorf("completion tcsh exited %d, want 2: %s", code, errs)
	}
}

// Every command a user can see has help with examples.
func TestEveryCommandHasExamples(t *testing.T) {
	root := newRoot()
	addCompletionCommand(root)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			if strings.TrimSpace(sub.Example) == "" {
				t.Errorf("corral %s has no examples (add them to its Example, or to examples in help.go)", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk(root)
	out, _, _ := cli(t, "up", "--help")
	if !strings.Contains(out, "Examples:\n  corral up ") {
		t.Errorf("corral up --help shows no examples:\n%s", out)
	}
}

// Bad values are usage errors (exit 2), said in words, before anything
// is sent or started.
func TestBadValuesExit2(t *testing.T) {
	cfg := writeConfig(t, twoServices)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ensure", "webui", "--timeout", "-1s"}, "corral: ensure --timeout -1s: must be more than 0 (e.g. 30s, 5m)\n"},
		{[]string{"up", "--timeout", "0s"}, "corral: up --timeout 0s: must be more than 0 (e.g. 30s, 5m)\n"},
		{[]string{"logs", "webui", "-n", "-1"}, "corral: logs -n -1: must be 0 (everything kept) or more\n"},
		{[]string{"events", "-n", "-5"}, "corral: events -n -5: must be 0 (everything kept) or more\n"},
		{[]string{"daemon", "--exit-with", "-5"}, "corral: --exit-with -5 is not a pid: give the pid of the process whose exit shuts the daemon down (the app's own, e.g. os.getpid() in Python)\n"},
		{[]string{"up", "--exit-with", "0"}, "corral: --exit-with 0 is not a pid: give the pid of the process whose exit shuts the daemon down (the app's own, e.g. os.getpid() in Python)\n"},
		{[]string{"up", "--exit-with", "2147483647"}, "corral: --exit-with 2147483647: no process with this pid is running (it has exited, or the pid is mistyped); nothing was started: give the pid of a running process (the app's own, e.g. os.getpid() in Python)\n"},
		{[]string{"up", "--containment", "cgroups"}, "corral: usage: proctree: unknown containment \"cgroups\" (want auto, cgroup or pgroup)\n"},
		{[]string{"status", "a", "b"}, "corral: usage: accepts at most 1 arg(s), received 2\n"},
		{[]string{"check", "extra"}, "corral: usage: unknown command \"extra\" for \"corral check\"\n"},
	} {
		out, errs, code := cli(t, append([]string{"-c", cfg}, tc.args...)...)
		if code != exitUsage || out != "" {
			t.Errorf("%v exited %d (want 2), stdout %q", tc.args, code, out)
		}
		wantOutput(t, fmt.Sprint(tc.args), errs, tc.want)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), ".corral")); !os.IsNotExist(err) {
		t.Errorf("a refused command made a state directory: %v", err)
	}
}

// A line cut to the terminal's width ends in "…"; a pipe gets it whole.
func TestFitToWidth(t *testing.T) {
	if got := render.Fit("python launch.py --api --listen", 16); got != "python launch.p…" {
		t.Errorf("Fit: %q", got)
	}
	if got := render.Fit("short", 16); got != "short" {
		t.Errorf("Fit of a short line: %q", got)
	}
	var b bytes.Buffer
	fw := &fitWriter{w: &b, width: 10}
	fmt.Fprint(fw, "0123456789abc\nshort\nlast line that is long")
	fw.Flush()
	if got := b.String(); got != "012345678…\nshort\nlast line…" {
		t.Errorf("fitWriter: %q", got)
	}
	b.Reset()
	fw = newFitWriter(&b) // not a terminal: whole lines
	fmt.Fprint(fw, strings.Repeat("x", 300)+"\n")
	fw.Flush()
	if b.Len() != 301 {
		t.Errorf("a pipe got %d bytes of a 300-byte line", b.Len())
	}
	procs := []render.Proc{
		{PID: 10, PPID: 1, PGID: 10, Cmdline: []string{"/usr/bin/python3", "launch.py", "--api", "--listen", "--port", "7860", "--medvram-sdxl"}, RSS: 1 << 30},
		{PID: 11, PPID: 10, PGID: 10, Cmdline: []string{"/usr/bin/python3", "-c", "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5)"}, RSS: 1 << 20},
	}
	b.Reset()
	render.TreeWidth(&b, "    ", procs, 10, 60)
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if n := len([]rune(l)); n > 60 {
			t.Errorf("a %d-column line in 60 columns: %q", n, l)
		}
		if !strings.Contains(l, " MiB") {
			t.Errorf("the RSS column was cut off: %q", l)
		}
	}
	b.Reset()
	render.TreeWidth(&b, "    ", procs, 10, 0)
	if !strings.Contains(b.String(), "spawn_main(tracker_fd=5)") || !strings.Contains(b.String(), "--medvram-sdxl") {
		t.Errorf("full width cut a command line:\n%s", b.String())
	}
	_ = runtime.GOOS
}

// A daemon that exits before answering is explained by what it wrote in
// this run only.
func TestDaemonExitedShowsThisRun(t *testing.T) {
	p := filepath.Join(t.TempDir(), "daemon.log")
	os.WriteFile(p, []byte("an earlier run's error\n"), 0o600)
	since := int64(len("an earlier run's error\n"))
	err := daemonExited(fmt.Errorf("exit status 1"), p, since)
	wantOutput(t, "nothing written", err.Error(), "the daemon exited (exit status 1) before answering, and wrote nothing to "+p)
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprint(f, "corral: daemon: this run's error\n")
	f.Close()
	err = daemonExited(fmt.Errorf("exit status 1"), p, since)
	wantOutput(t, "this run", err.Error(), "the daemon exited (exit status 1) before answering; it wrote ("+p+"):\ncorral: daemon: this run's error")
	long := strings.Repeat("a line of a chatty daemon\n", 1000)
	os.WriteFile(p, []byte(long), 0o600)
	if got := logSince(p, 0); len(got) > maxDaemonOutput+10 || !strings.HasPrefix(got, "[...]\na line") {
		t.Errorf("a long log: %d bytes, begins %q", len(got), got[:20])
	}
}
