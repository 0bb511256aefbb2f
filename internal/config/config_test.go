package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/restart"
)

const full = `
[corral]
containment = "pgroup"

[services.webui]
preset = "a1111"
shell = "bash webui.sh --api"
dir = "sd"
env = { COMMANDLINE_ARGS = "--api" }
profiles = { guarded = ["--medvram-sdxl", "it's"] }
health = { http = "http://127.0.0.1:7860/sdapi/v1/options", interval = "10s", failures = 3 }
restart = { policy = "always", backoff = "1s", max_backoff = "60s", burst = 5, window = "10m" }
stop = { signal = "INT", grace = "15s" }

[services.proxy]
command = ["proxy", "--port", "8080"]
after = ["webui"]
autostart = false
lifetime = "tree"
ready = { tcp = "127.0.0.1:8080", timeout = "5s" }
`

// configDir returns a directory to hold a test's corral.toml, with the
// subdirectory sd that the tests' dir = "sd" names (a dir must exist).
func configDir(t *testing.T) string {
	t.Helper()
	etc := t.TempDir()
	if err := os.Mkdir(filepath.Join(etc, "sd"), 0o755); err != nil {
		t.Fatal(err)
	}
	return etc
}

func TestParseFull(t *testing.T) {
	etc := configDir(t)
	f, err := Parse(filepath.Join(etc, "corral.toml"), full)
	if err != nil {
		t.Fatal(err)
	}
	w := f.Services["webui"]
	if w.Ready.HTTP != "http://127.0.0.1:7860/sdapi/v1/options" || w.Ready.Log == nil || w.Stop.Hook == nil || w.Stop.Hook.Method != "POST" {
		t.Errorf("a1111 preset not applied: ready %+v hook %+v", w.Ready, w.Stop.Hook)
	}
	if w.Stop.Signal != syscall.SIGINT || w.Stop.Grace != 15*time.Second {
		t.Errorf("stop %+v", w.Stop)
	}
	if w.Restart.Mode != restart.Always || w.Restart.MaxBackoff != time.Minute || w.Restart.Burst != 5 {
		t.Errorf("restart %+v", w.Restart)
	}
	if w.Dir != filepath.Join(etc, "sd") || !w.Autostart || w.Lifetime != LifetimeLeader || !w.StdinNull {
		t.Errorf("defaults/dir wrong: %+v", w)
	}
	if w.Health.Failures != 3 || w.Health.Interval != 10*time.Second {
		t.Errorf("health %+v", w.Health)
	}
	argv, err := w.CommandFor("guarded")
	if err != nil || argv[len(argv)-1] != `bash webui.sh --api --medvram-sdxl 'it'\''s'` {
		t.Errorf("profile argv %q, %v", argv, err)
	}
	if _, err := w.CommandFor("nope"); err == nil || !strings.Contains(err.Error(), "guarded") {
		t.Errorf("unknown profile error %v", err)
	}
	p := f.Services["proxy"]
	if p.Autostart || p.Lifetime != LifetimeTree || len(p.Ports()) != 1 || p.Ports()[0] != 8080 {
		t.Errorf("proxy %+v ports %v", p, p.Ports())
	}
	levels, err := f.StartOrder()
	if err != nil || len(levels) != 2 || levels[0][0] != "webui" || levels[1][0] != "proxy" {
		t.Errorf("start order %v %v", levels, err)
	}
	if got := w.Ports(); len(got) != 1 || got[0] != 7860 {
		t.Errorf("webui ports %v", got)
	}
}

// Every bad config names file:line:col of the key at fault.
func TestErrorsCarryPositions(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"unknown key with hint", "[services.a]\ncomand = [\"x\"]\n", `c.toml:2:1: services.a.comand: unknown key (did you mean "command"?)`},
		{"bad duration inline", "[services.a]\ncommand = [\"x\"]\nrestart = { policy = \"always\", backoff = \"soon\" }\n", `c.toml:3:32: services.a.restart.backoff: "soon" is not a duration`},
		{"bad policy", "[services.a]\ncommand = [\"x\"]\n[services.a.restart]\npolicy = \"sometimes\"\n", `c.toml:4:1: services.a.restart.policy: unknown policy "sometimes"`},
		{"no command", "[services.a]\ndir = \"/tmp\"\n", `c.toml:1:1: services.a: no command`},
		{"unknown dependency", "[services.a]\ncommand = [\"x\"]\nafter = [\"b\"]\n", `c.toml:3:1: services.a.after: unknown service "b"`},
		{"syntax", "[services.a]\ncommand = [\"x\"\n", `c.toml:2:15: expected a comma`},
		{"bad signal", "[services.a]\ncommand = [\"x\"]\nstop = { signal = \"TERMINATE\" }\n", `c.toml:3:10: services.a.stop.signal: unknown signal "TERMINATE"`},
		{"bad url", "[services.a]\ncommand = [\"x\"]\nready = { http = \"localhost:80\" }\n", `services.a.ready.http: "localhost:80" is not an http(s) URL`},
		{"bad memory size", "[services.a]\ncommand = [\"x\"]\nlimits = { processes = 64, memory = \"lots\" }\n", `c.toml:3:28: services.a.limits.memory: "lots" is not a size`},
		{"bad on_limit", "[services.a]\ncommand = [\"x\"]\non_limit = \"panic\"\n", `c.toml:3:1: services.a.on_limit: unknown action "panic"`},
		{"both command and shell", "[services.a]\ncommand = [\"x\"]\nshell = \"x\"\n", `c.toml:3:1: services.a.shell: give either`},
		{"bad preset", "[services.a]\ncommand = [\"x\"]\npreset = \"auto1111\"\n", `unknown preset "auto1111"`},
		{"type mismatch", "[services.a]\ncommand = \"x\"\n", `c.toml:2:11: services.a.command: expected a list of strings`},
		{"pidfile with tree", "[services.a]\ncommand = [\"x\"]\nlifetime = \"tree\"\npidfile = \"a.pid\"\n", `c.toml:4:1: services.a.pidfile: pidfile names the main process; remove lifetime = "tree" (the instance ends when the pid in the file dies)`},
		{"pidfile before tree", "[services.a]\npidfile = \"a.pid\"\ncommand = [\"x\"]\nlifetime = \"tree\"\n", `c.toml:2:1: services.a.pidfile: pidfile names`},
		{"bad hook", "[services.a]\ncommand = [\"x\"]\nstop = { hook = \"off\" }\n", `c.toml:3:10: services.a.stop.hook: "off" is not "METHOD http://host/path" (or "none" for no hook)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("c.toml", tc.src)
			if err == nil {
				t.Fatalf("accepted: %+v", f)
			}
			if f != nil {
				t.Fatal("a bad config returned a configuration")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
		})
	}
}

func TestCycle(t *testing.T) {
	_, err := Parse("c.toml", "[services.a]\ncommand=[\"x\"]\nafter=[\"b\"]\n[services.b]\ncommand=[\"x\"]\nafter=[\"a\"]\n")
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("cycle not reported: %v", err)
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := Parse("c.toml", "[services.a]\ncommand=[\"x\"]\nlifetime=\"forever\"\nstdin=\"tty\"\n")
	var n int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *Error
		if errors.As(e, &ce) {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("want both errors, got %v", err)
	}
}

func TestLocate(t *testing.T) {
	src := "# c\n[services.\"my.svc\"]\ncommand = [\"x\"] # k = 1\n  restart = { policy = \"x\", burst = 3 }\n"
	for _, tc := range []struct {
		path      []string
		line, col int
	}{
		{[]string{"services", "my.svc"}, 2, 1},
		{[]string{"services", "my.svc", "command"}, 3, 1},
		{[]string{"services", "my.svc", "restart", "burst"}, 4, 29},
		{[]string{"services", "my.svc", "nothere"}, 2, 1},
	} {
		if l, c := locate(src, tc.path); l != tc.line || c != tc.col {
			t.Errorf("locate(%v) = %d:%d, want %d:%d", tc.path, l, c, tc.line, tc.col)
		}
	}
}

// The example shipped in examples/ (and quoted in docs/configuration.md)
// must stay valid.
// Its webui's dir, ~/stable-diffusion-webui, must exist (every dir is
// checked at load): the test gives it a home that has one.
func TestShippedExampleParses(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	if err := os.Mkdir(filepath.Join(home, "stable-diffusion-webui"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := Load("../../examples/corral.toml")
	if err != nil {
		t.Fatal(err)
	}
	w := f.Services["webui"]
	argv, _ := w.CommandFor("guarded")
	if len(f.Services) != 3 || w.HookFor(argv) == nil || f.Services["comfy"].Lifetime != LifetimeTree {
		t.Fatalf("example parsed to %+v (the webui's stop hook must apply: its COMMANDLINE_ARGS has --api-server-stop)", f.Services)
	}
}

func TestLimits(t *testing.T) {
	f, err := Parse("c.toml", "[corral]\nwatch_interval = \"250ms\"\nlimits = { memory = \"2GiB\" }\non_limit = \"stop\"\n[services.a]\ncommand = [\"x\"]\nlimits = { processes = 64, memory = \"150MB\", fork_rate = 50 }\n[services.b]\ncommand = [\"x\"]\nlimits = { memory = 1048576 }\non_limit = \"freeze\"\n")
	if err != nil {
		t.Fatal(err)
	}
	a, b := f.Services["a"], f.Services["b"]
	if a.Limits != (Limits{Processes: 64, Memory: 150e6, ForkRate: 50}) || a.OnLimit != LimitRestart {
		t.Errorf("a: %+v %s", a.Limits, a.OnLimit)
	}
	if b.Limits.Memory != 1<<20 || b.OnLimit != LimitFreeze {
		t.Errorf("b: %+v %s", b.Limits, b.OnLimit)
	}
	if f.Watch.Interval != 250*time.Millisecond || f.Watch.Limits.Memory != 2<<30 || f.Watch.OnLimit != LimitStop {
		t.Errorf("watch %+v", f.Watch)
	}
	for in, want := range map[string]int64{"150MB": 150e6, "24GiB": 24 << 30, "512k": 512e3, "1.5GB": 1.5e9, "100": 100} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestPIDFile(t *testing.T) {
	etc := configDir(t)
	abs := filepath.Join(t.TempDir(), "x.pid")
	home, _ := os.UserHomeDir()
	for _, tc := range []struct {
		name, keys, want string
	}{
		{"relative to dir", "dir = \"sd\"\npidfile = \"run/nginx.pid\"\n", filepath.Join(etc, "sd", "run", "nginx.pid")},
		{"relative to an absolute dir", "dir = '" + filepath.Dir(abs) + "'\npidfile = \"run/nginx.pid\"\n", filepath.Join(filepath.Dir(abs), "run", "nginx.pid")},
		{"relative to the config", "pidfile = \"run/nginx.pid\"\n", filepath.Join(etc, "run", "nginx.pid")},
		{"absolute", "dir = \"sd\"\npidfile = '" + abs + "'\n", abs},
		{"home", "dir = \"sd\"\npidfile = \"~/n.pid\"\n", filepath.Join(home, "n.pid")},
		{"empty is unset", "pidfile = \"\"\nlifetime = \"tree\"\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(filepath.Join(etc, "corral.toml"), "[services.a]\ncommand = [\"x\"]\n"+tc.keys)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Services["a"].PIDFile; got != tc.want {
				t.Fatalf("PIDFile %q, want %q", got, tc.want)
			}
		})
	}
}

// A preset's stop hook applies only when the instance really has the flag
// that makes the server answer it.
func TestHookFor(t *testing.T) {
	for _, tc := range []struct {
		name, keys, profile string
		want                bool
	}{
		{"flag in command", "command = [\"bash\", \"webui.sh\", \"--api-server-stop\"]\n", "", true},
		{"no flag", "command = [\"bash\", \"webui.sh\", \"--api\"]\n", "", false},
		{"flag with a value is another word", "command = [\"bash\", \"webui.sh\", \"--api-server-stop=1\"]\n", "", false},
		{"flag in COMMANDLINE_ARGS", "command = [\"bash\", \"webui.sh\"]\nenv = { COMMANDLINE_ARGS = \"--api --api-server-stop\" }\n", "", true},
		{"other flag in COMMANDLINE_ARGS", "command = [\"bash\", \"webui.sh\"]\nenv = { COMMANDLINE_ARGS = \"--api --api-server-stopped\", OTHER = \"--api-server-stop\" }\n", "", false},
		{"flag from a profile", "command = [\"bash\", \"webui.sh\"]\nprofiles = { p = [\"--api-server-stop\"] }\n", "p", true},
		{"profile not used", "command = [\"bash\", \"webui.sh\"]\nprofiles = { p = [\"--api-server-stop\"] }\n", "", false},
		{"flag from a profile of a shell service", "shell = \"bash webui.sh --api\"\nprofiles = { p = [\"--api-server-stop\"] }\n", "p", true},
		{"flag in shell line", "shell = \"bash webui.sh --api-server-stop\"\n", "", true},
		{"flag quoted in shell line", "shell = \"bash webui.sh '--api-server-stop' --api\"\n", "", true},
		{"flag not a word of shell line", "shell = \"bash webui.sh --api-server-stopx\"\n", "", false},
		{"user hook always", "command = [\"bash\", \"webui.sh\"]\nstop = { hook = \"POST http://127.0.0.1:7860/quit\" }\n", "", true},
		{"hook none", "command = [\"bash\", \"webui.sh\", \"--api-server-stop\"]\nstop = { hook = \"none\" }\n", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("c.toml", "[services.w]\npreset = \"a1111\"\n"+tc.keys)
			if err != nil {
				t.Fatal(err)
			}
			s := f.Services["w"]
			argv, err := s.CommandFor(tc.profile)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.HookFor(argv); (got != nil) != tc.want {
				t.Fatalf("HookFor(%q) = %+v, want a hook: %v", argv, got, tc.want)
			}
		})
	}
	f, err := Parse("c.toml", "[services.w]\npreset = \"forge\"\ncommand = [\"x\"]\nstop = { hook = \"none\", grace = \"3s\" }\n[services.u]\ncommand = [\"x\"]\nstop = { hook = \"http://127.0.0.1:1/stop\" }\n")
	if err != nil {
		t.Fatal(err)
	}
	if w := f.Services["w"]; w.Stop.Hook != nil || w.Stop.Grace != 3*time.Second {
		t.Errorf("hook = \"none\" kept %+v", w.Stop)
	}
	if h := f.Services["u"].HookFor([]string{"x"}); h == nil || h.Method != "POST" || h.RequiresArg != "" {
		t.Errorf("user hook %+v", h)
	}
}

func TestLifetimeHandover(t *testing.T) {
	f, err := Parse("c.toml", "[services.a]\ncommand = [\"x\"]\nlifetime = \"handover\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Services["a"].Lifetime; got != LifetimeHandover {
		t.Fatalf("lifetime %q, want %q", got, LifetimeHandover)
	}
	for _, tc := range []struct{ name, src, want string }{
		{"unknown lifetime", "[services.a]\ncommand = [\"x\"]\nlifetime = \"forever\"\n",
			`c.toml:3:1: services.a.lifetime: unknown lifetime "forever" (want leader, tree or handover)`},
		{"pidfile with handover", "[services.a]\ncommand = [\"x\"]\nlifetime = \"handover\"\npidfile = \"a.pid\"\n",
			`c.toml:4:1: services.a.pidfile: pidfile names the main process; remove lifetime = "handover" (the instance ends when the pid in the file dies)`},
		{"pidfile before handover", "[services.a]\npidfile = \"a.pid\"\ncommand = [\"x\"]\nlifetime = \"handover\"\n",
			`c.toml:2:1: services.a.pidfile: pidfile names`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("c.toml", tc.src)
			if err == nil {
				t.Fatalf("accepted: %+v", f)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
		})
	}
}

func TestRestartFile(t *testing.T) {
	etc := configDir(t)
	abs := filepath.Join(t.TempDir(), "restart")
	for _, tc := range []struct {
		name, keys, want string
	}{
		{"relative to dir", "dir = \"sd\"\nrestart_file = \"tmp/restart\"\n", filepath.Join(etc, "sd", "tmp", "restart")},
		{"relative to an absolute dir", "dir = '" + filepath.Dir(abs) + "'\nrestart_file = \"tmp/restart\"\n", filepath.Join(filepath.Dir(abs), "tmp", "restart")},
		{"relative to the config", "restart_file = \"tmp/restart\"\n", filepath.Join(etc, "tmp", "restart")},
		{"absolute", "dir = \"sd\"\nrestart_file = '" + abs + "'\n", abs},
		{"unset", "dir = \"sd\"\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(filepath.Join(etc, "corral.toml"), "[services.a]\ncommand = [\"x\"]\n"+tc.keys)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Services["a"].RestartFile; got != tc.want {
				t.Fatalf("RestartFile %q, want %q", got, tc.want)
			}
		})
	}
	// A misspelt key is pointed at restart_file.
	_, err := Parse("c.toml", "[services.a]\ncommand = [\"x\"]\nrestart_fle = \"tmp/restart\"\n")
	if err == nil || !strings.Contains(err.Error(), `c.toml:3:1: services.a.restart_fle: unknown key (did you mean "restart_file"?)`) {
		t.Fatalf("misspelt restart_file: %v", err)
	}
}

func TestKnownKeysHaveRestartFile(t *testing.T) {
	if !slices.Contains(knownKeys, "restart_file") {
		t.Fatal("restart_file is not in knownKeys: no did-you-mean hint for it")
	}
}

// envOf returns the values of name in env, in order.
func envOf(env []string, name string) []string {
	var vs []string
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			vs = append(vs, v)
		}
	}
	return vs
}

func TestPresetLifetimeAndRestart(t *testing.T) {
	etc := configDir(t)
	parse := func(t *testing.T, keys string) *Service {
		t.Helper()
		f, err := Parse(filepath.Join(etc, "corral.toml"), "[services.a]\ncommand = [\"x\"]\n"+keys)
		if err != nil {
			t.Fatal(err)
		}
		return f.Services["a"]
	}
	t.Run("comfyui hands over", func(t *testing.T) {
		s := parse(t, "preset = \"comfyui\"\n")
		if s.Lifetime != LifetimeHandover || s.RestartFile != "" || len(envOf(s.Env, "SD_WEBUI_RESTART")) != 0 {
			t.Fatalf("comfyui: lifetime %q, restart_file %q, env %q", s.Lifetime, s.RestartFile, s.Env)
		}
	})
	for _, lt := range []Lifetime{LifetimeLeader, LifetimeTree} {
		t.Run("comfyui with lifetime "+string(lt), func(t *testing.T) {
			if s := parse(t, "preset = \"comfyui\"\nlifetime = \""+string(lt)+"\"\n"); s.Lifetime != lt {
				t.Fatalf("lifetime %q, want the user's %q", s.Lifetime, lt)
			}
		})
	}
	t.Run("comfyui with pidfile and lifetime leader", func(t *testing.T) {
		if s := parse(t, "preset = \"comfyui\"\nlifetime = \"leader\"\npidfile = \"c.pid\"\n"); s.PIDFile == "" || s.Lifetime != LifetimeLeader {
			t.Fatalf("%+v", s)
		}
	})
	for _, p := range []string{"a1111", "forge"} {
		t.Run(p+" restarts by its file", func(t *testing.T) {
			s := parse(t, "preset = \""+p+"\"\ndir = \"sd\"\n")
			if got := envOf(s.Env, "SD_WEBUI_RESTART"); len(got) != 1 || got[0] != "1" {
				t.Errorf("SD_WEBUI_RESTART %q in %q, want [1]", got, s.Env)
			}
			if want := filepath.Join(etc, "sd", "tmp", "restart"); s.RestartFile != want {
				t.Errorf("RestartFile %q, want %q", s.RestartFile, want)
			}
			if s.Lifetime != LifetimeLeader {
				t.Errorf("lifetime %q", s.Lifetime)
			}
		})
	}
	t.Run("a1111 without dir", func(t *testing.T) {
		if s := parse(t, "preset = \"a1111\"\n"); s.RestartFile != filepath.Join(etc, "tmp", "restart") {
			t.Fatalf("RestartFile %q", s.RestartFile)
		}
	})
	t.Run("a1111 with the user's SD_WEBUI_RESTART", func(t *testing.T) {
		s := parse(t, "preset = \"a1111\"\nenv = { SD_WEBUI_RESTART = \"0\", COMMANDLINE_ARGS = \"--api\" }\n")
		if got := envOf(s.Env, "SD_WEBUI_RESTART"); len(got) != 1 || got[0] != "0" {
			t.Fatalf("SD_WEBUI_RESTART %q in %q, want the user's [0] only", got, s.Env)
		}
		if got := envOf(s.Env, "COMMANDLINE_ARGS"); len(got) != 1 || got[0] != "--api" {
			t.Fatalf("COMMANDLINE_ARGS %q", got)
		}
	})
	t.Run("a1111 with the user's restart_file", func(t *testing.T) {
		s := parse(t, "preset = \"a1111\"\ndir = \"sd\"\nrestart_file = \"run/again\"\n")
		if want := filepath.Join(etc, "sd", "run", "again"); s.RestartFile != want {
			t.Fatalf("RestartFile %q, want %q", s.RestartFile, want)
		}
	})
	t.Run("no preset", func(t *testing.T) {
		if s := parse(t, ""); s.Lifetime != LifetimeLeader || s.RestartFile != "" || len(s.Env) != 0 {
			t.Fatalf("defaults %+v", s)
		}
	})
}

func TestPresetHandoverGivesWayToPidfile(t *testing.T) {
	f, err := Parse("c.toml", "[services.a]\npreset = \"comfyui\"\ncommand = [\"x\"]\npidfile = \"/run/x.pid\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if a := f.Services["a"]; a.Lifetime != LifetimeLeader || a.PIDFile != "/run/x.pid" {
		t.Fatalf("lifetime %s, pidfile %q", a.Lifetime, a.PIDFile)
	}
}
