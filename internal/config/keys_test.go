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
)

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDotenvSyntax(t *testing.T) {
	text := "\ufeff# comment\n\nA=plain value  # a comment\nexport B=exported\n  C = spaced\t\nD='single $HOME \\n #not a comment'\n" +
		"E=\"double\\nline \\\"q\\\" \\$X \\\\ \\t\"\nF=\nG=a#b\nH=\"multi\nline\" # after\nI='multi\nline'\nA=later wins\r\nJ=x=y\n"
	got, err := parseDotenv("x.env", text)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=plain value", "B=exported", "C=spaced", `D=single $HOME \n #not a comment`,
		"E=double\nline \"q\" $X \\ \t", "F=", "G=a#b", "H=multi\nline", "I=multi\nline", "A=later wins", "J=x=y"}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	for _, c := range []struct{ text, want string }{
		{"A=1\nnot a line\n", `x.env:2:1: expected NAME=value, found "not a line"`},
		{"A=1\n  1BAD=x\n", `x.env:2:3: "1BAD" is not a variable name: use letters, digits and _, not starting with a digit`},
		{"MY-VAR=x\n", `x.env:1:1: "MY-VAR" is not a variable name`},
		{"A=1\nB=\"open\nC=2\n", `x.env:2:3: the " quote of B is never closed`},
		{"A='x' y\n", `x.env:1:6: unexpected "y" after the closing quote of A (quote the whole value)`},
		{"CORRAL_INSTANCE=x\n", `x.env:1:1: CORRAL_INSTANCE is set by corral for every process of the service; remove it from this file`},
		{"A=x\x00y\n", `x.env:1:1: the value of A has a NUL byte`},
	} {
		_, err := parseDotenv("x.env", c.text)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %s", c.text, err, c.want)
		}
	}
}

func TestEnvFileAtLoad(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, ".env"), "A=from-file\nB=file\n")
	write(t, filepath.Join(dir, "conf", "second.env"), "B=second\n")
	path := filepath.Join(dir, "corral.toml")
	f, err := Parse(path, `[services.a]
command = ["x"]
env_file = [".env", "conf/second.env", { path = "missing.env", optional = true }]
env = { C = "env" }

[services.b]
command = ["x"]
env_file = ".env"
`)
	if err != nil {
		t.Fatal(err)
	}
	a := f.Services["a"]
	want := []EnvFile{{Path: filepath.Join(dir, ".env")}, {Path: filepath.Join(dir, "conf", "second.env")}, {Path: filepath.Join(dir, "missing.env"), Optional: true}}
	if !slices.Equal(a.EnvFiles, want) {
		t.Fatalf("env files %+v", a.EnvFiles)
	}
	if slices.ContainsFunc(a.Env, func(kv string) bool { return strings.Contains(kv, "from-file") }) {
		t.Fatalf("an env file's values are kept in the configuration: %q", a.Env)
	}
	vars, err := ReadEnv(a.EnvFiles)
	if err != nil || !slices.Equal(vars, []string{"A=from-file", "B=file", "B=second"}) {
		t.Fatalf("ReadEnv: %q %v", vars, err)
	}
	if len(f.Services["b"].EnvFiles) != 1 {
		t.Fatalf("a single path: %+v", f.Services["b"].EnvFiles)
	}

	write(t, filepath.Join(dir, "bad.env"), "OK=1\n\nexport 2X=1\n")
	for _, c := range []struct{ src, want string }{
		{"[services.a]\ncommand = [\"x\"]\nenv_file = \"nope.env\"\n",
			path + `:3:1: services.a.env_file: ` + filepath.Join(dir, "nope.env") + ` does not exist; create it, or write { path = "nope.env", optional = true } to start without it`},
		{"[services.a]\ncommand = [\"x\"]\nenv_file = [\".env\", \"nope.env\"]\n",
			path + `:3:21: services.a.env_file[1]: ` + filepath.Join(dir, "nope.env") + ` does not exist`},
		{"[services.a]\ncommand = [\"x\"]\nenv_file = { path = \"nope.env\" }\n",
			path + `:3:14: services.a.env_file.path: ` + filepath.Join(dir, "nope.env") + ` does not exist`},
		{"[services.a]\ncommand = [\"x\"]\nenv_file = \"bad.env\"\n",
			filepath.Join(dir, "bad.env") + `:3:8: "2X" is not a variable name: use letters, digits and _, not starting with a digit (env_file of services.a)`},
		{"[services.a]\ncommand = [\"x\"]\nenv_file = { optional = true }\n",
			path + `:3:1: services.a.env_file: a table in env_file needs path`},
		{"[services.a]\ncommand = [\"x\"]\nenv_file = \"conf\"\n",
			path + `:3:1: services.a.env_file: ` + filepath.Join(dir, "conf") + ` is a directory`},
		{"[services.a]\ncommand = [\"x\"]\nenv_file = [{ path = \".env\", optinal = true }]\n",
			path + `:3:30: services.a.env_file[0].optinal: unknown key (did you mean "optional"?)`},
	} {
		_, err := Parse(path, c.src)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got  %v\n want %s", c.src, err, c.want)
		}
	}
}

func TestIncludeMerge(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "corral.toml")
	write(t, filepath.Join(dir, "conf.d", "20-b.toml"), "[services.b]\ncommand = [\"b\"]\ndir = \"work\"\nafter = [\"a\"]\n")
	write(t, filepath.Join(dir, "conf.d", "10-a.toml"), "include = [\"more/*.toml\"]\ngroups = { both = [\"a\", \"b\"] }\n[services.a]\ncommand = [\"a\"]\n")
	write(t, filepath.Join(dir, "conf.d", "more", "c.toml"), "[services.c]\ncommand = [\"c\"]\n")
	write(t, filepath.Join(dir, "conf.d", "README"), "not toml")
	if err := os.Mkdir(filepath.Join(dir, "conf.d", "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "include = [\"conf.d/*.toml\", \"empty.d/*.toml\"]\n[corral]\ncontainment = \"pgroup\"\n[services.main]\ncommand = [\"m\"]\n"
	f, err := Parse(main, src)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !slices.Equal(got, []string{"a", "b", "c", "main"}) {
		t.Fatalf("services %v", got)
	}
	wantInc := []string{filepath.Join(dir, "conf.d", "10-a.toml"), filepath.Join(dir, "conf.d", "more", "c.toml"), filepath.Join(dir, "conf.d", "20-b.toml")}
	if !slices.Equal(f.Includes, wantInc) {
		t.Fatalf("includes %v, want %v (sorted, depth first)", f.Includes, wantInc)
	}
	// A relative path is relative to the file that has it.
	if f.Services["b"].Dir != filepath.Join(dir, "conf.d", "work") {
		t.Fatalf("dir of b: %s", f.Services["b"].Dir)
	}
	if !slices.Equal(f.Groups["both"], []string{"a", "b"}) {
		t.Fatalf("groups %v", f.Groups)
	}
	// The digest covers the included files: a change there is a change.
	d1 := f.Digest
	write(t, filepath.Join(dir, "conf.d", "more", "c.toml"), "[services.c]\ncommand = [\"c2\"]\n")
	f2, err := Parse(main, src)
	if err != nil || f2.Digest == d1 || d1 == Digest([]byte(src)) {
		t.Fatalf("digest did not follow the included file: %v %s %s", err, d1, f2.Digest)
	}
	// Load reads the same.
	write(t, main, src)
	if f3, err := Load(main); err != nil || len(f3.Services) != 4 {
		t.Fatalf("Load: %v", err)
	}
}

func TestIncludeErrors(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "corral.toml")
	a := filepath.Join(dir, "conf.d", "a.toml")
	write(t, a, "[services.web]\ncommand = [\"a\"]\n")
	write(t, filepath.Join(dir, "bad", "x.toml"), "[services.x]\ncommand = [\"x\"]\nrestart = { polcy = \"always\" }\n")
	write(t, filepath.Join(dir, "syntax", "x.toml"), "[services.x\n")
	write(t, filepath.Join(dir, "daemon", "x.toml"), "[corral]\ncontainment = \"pgroup\"\n")
	write(t, filepath.Join(dir, "loop", "x.toml"), "include = [\"../corral.toml\"]\n")
	write(t, filepath.Join(dir, "grp", "x.toml"), "groups = { sd = [\"web\"] }\n")
	for _, c := range []struct{ src, want string }{
		{"include = [\"conf.d/*.toml\"]\n\n[services.web]\ncommand = [\"m\"]\n",
			a + `:1:1: services.web: is defined twice: here and at ` + main + `:3:1; a service is defined in one file only`},
		{"include = [\"bad/*.toml\"]\n",
			filepath.Join(dir, "bad", "x.toml") + `:3:13: services.x.restart.polcy: unknown key (did you mean "policy"?)`},
		{"include = [\"syntax/x.toml\"]\n", filepath.Join(dir, "syntax", "x.toml") + `:2:12: expected '.' or ']' to end table name`},
		{"include = [\"daemon/x.toml\"]\n",
			filepath.Join(dir, "daemon", "x.toml") + `:1:1: corral: [corral] is read only from the main file (` + main + `); move these settings there`},
		{"include = [\"loop/x.toml\"]\n",
			filepath.Join(dir, "loop", "x.toml") + `:1:12: include[0]: include cycle: ` + main + ` -> ` + filepath.Join(dir, "loop", "x.toml") + ` -> ` + main},
		{"include = \"*.toml\"\n", main + `:1:1: include: include cycle: ` + main + ` -> ` + main},
		{"include = [\"conf.d/a.toml\", \"conf.d/*.toml\"]\n", main + `:1:29: include[1]: ` + a + ` is included twice (also by ` + main + `:1:12)`},
		{"include = [\"conf.d/nope.toml\"]\n", main + `:1:12: include[0]: ` + filepath.Join(dir, "conf.d", "nope.toml") + ` does not exist; create it or remove it from include`},
		{"include = [\"conf.d\"]\n", main + `:1:12: include[0]: ` + filepath.Join(dir, "conf.d") + ` is not a file (to include a directory's files write "conf.d/*.toml")`},
		{"include = [\"conf.d/*.toml\", \"grp/*.toml\"]\ngroups = { sd = [\"web\"] }\n",
			filepath.Join(dir, "grp", "x.toml") + `:1:12: groups.sd: group sd is defined twice: here and at ` + main + `:2:12`},
		{"inclde = [\"conf.d/*.toml\"]\n", main + `:1:1: inclde: unknown key (did you mean "include"?)`},
	} {
		write(t, main, c.src)
		_, err := Load(main)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got  %v\n want %s", c.src, err, c.want)
		}
	}
}

func TestGroups(t *testing.T) {
	const svcs = "[services.webui]\ncommand = [\"a\"]\n[services.comfyui]\ncommand = [\"b\"]\n"
	f, err := Parse("c.toml", "groups = { sd = [\"webui\", \"comfyui\"], one = [\"webui\"] }\n"+svcs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Groups["sd"], []string{"webui", "comfyui"}) {
		t.Fatalf("groups %v", f.Groups)
	}
	for _, c := range []struct{ src, want string }{
		{"groups = { sd = [\"webui\", \"comfy\"] }\n", `c.toml:1:12: groups.sd: unknown service "comfy" (did you mean "comfyui"?)`},
		{"groups = { sd = [] }\n", `c.toml:1:12: groups.sd: group sd lists no service`},
		{"groups = { sd = [\"@x\"] }\n", `c.toml:1:12: groups.sd: "@x": a group lists services, not other groups`},
		{"groups = { sd = [\"webui\", \"webui\"] }\n", `c.toml:1:12: groups.sd: service "webui" is listed twice`},
		{"groups = { \"s d\" = [\"webui\"] }\n", `c.toml:1:13: groups.s d: group names use letters, digits`},
	} {
		_, err := Parse("c.toml", c.src+svcs)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got  %v\n want %s", c.src, err, c.want)
		}
	}
	out, err := Expand([]string{"@sd", "webui", "other"}, f.Groups, f.Names())
	if err != nil || !slices.Equal(out, []string{"webui", "comfyui", "other"}) {
		t.Fatalf("Expand: %v %v", out, err)
	}
	for _, c := range []struct {
		arg    string
		groups map[string][]string
		want   string
	}{
		{"@ds", f.Groups, `config: unknown group "ds" (did you mean "sd"?) (groups: one, sd)`},
		{"@webui", f.Groups, `config: unknown group "webui"; webui is a service: name it without @`},
		{"@sd", nil, `config: unknown group "sd": the configuration defines no groups`},
	} {
		if _, err := Expand([]string{c.arg}, c.groups, f.Names()); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %s", c.arg, err, c.want)
		}
	}
}

func TestReadyList(t *testing.T) {
	f, err := Parse("c.toml", `[services.db]
command = ["x"]
ready = [
  { tcp = "127.0.0.1:5432", timeout = "30s" },
  { log = "ready to accept", interval = "1s" },
]
[services.one]
command = ["x"]
ready = [{ tcp = "127.0.0.1:1" }]
[[services.aot.ready]]
tcp = "127.0.0.1:2"
[[services.aot.ready]]
http = "http://127.0.0.1:2/"
timeout = "2m"
[services.aot]
command = ["x"]
`)
	if err != nil {
		t.Fatal(err)
	}
	r := f.Services["db"].Ready
	if len(r.All) != 2 || r.All[0].TCP != "127.0.0.1:5432" || r.All[0].Timeout != 30*time.Second || r.All[0].Interval != 100*time.Millisecond ||
		r.All[1].Log == nil || r.All[1].Timeout != time.Minute || r.All[1].Interval != time.Second {
		t.Fatalf("ready %+v", r)
	}
	if r.Timeout != time.Minute || r.Interval != 100*time.Millisecond || r.IsZero() || !r.Checks() {
		t.Fatalf("the list's own timeout %v interval %v", r.Timeout, r.Interval)
	}
	if o := f.Services["one"].Ready; o.All != nil || o.TCP != "127.0.0.1:1" {
		t.Fatalf("a list of one is that probe: %+v", o)
	}
	if a := f.Services["aot"]; len(a.Ready.All) != 2 || a.Ready.Timeout != 2*time.Minute || !slices.Equal(a.Ports(), []int{2}) {
		t.Fatalf("[[ready]] tables: %+v ports %v", a.Ready, a.Ports())
	}
	for _, c := range []struct{ src, want string }{
		{"ready = [{ tcp = \"x:1\" }, { timeout = \"5s\" }]", `c.toml:3:27: services.db.ready[1]: no check: give http, tcp, exec or log`},
		{"ready = [{ tcp = \"x:1\" }, { tpc = \"x:2\", log = \"x\" }]", `c.toml:3:29: services.db.ready[1].tpc: unknown key (did you mean "tcp"?)`},
		{"ready = [{ tcp = \"x:1\" },\n  { log = \"x\", timeout = \"soon\" }]", `c.toml:4:16: services.db.ready[1].timeout: "soon" is not a duration`},
		{"ready = [{ tcp = \"x:1\", failures = 3 }]", `c.toml:3:25: services.db.ready[0].failures: failures applies to health, not ready`},
	} {
		_, err := Parse("c.toml", "[services.db]\ncommand = [\"x\"]\n"+c.src+"\n")
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got  %v\n want %s", c.src, err, c.want)
		}
	}
	// [[ready]] positions: the second table's key.
	_, err = Parse("c.toml", "[services.db]\ncommand = [\"x\"]\n[[services.db.ready]]\ntcp = \"x:1\"\n[[services.db.ready]]\nlog = \"x\"\ntimeout = \"soon\"\n")
	if err == nil || err.Error() != `c.toml:7:1: services.db.ready[1].timeout: "soon" is not a duration (write e.g. "500ms", "10s", "2m")` {
		t.Errorf("[[ready]]: %v", err)
	}
}

func TestUmaskAndNice(t *testing.T) {
	f, err := Parse("c.toml", "[services.a]\ncommand = [\"x\"]\numask = \"027\"\nnice = 10\n[services.b]\ncommand = [\"x\"]\numask = \"0\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if a := f.Services["a"]; a.Umask == nil || *a.Umask != 0o027 || a.Nice == nil || *a.Nice != 10 {
		t.Fatalf("a: umask %v nice %v", a.Umask, a.Nice)
	}
	if b := f.Services["b"]; b.Umask == nil || *b.Umask != 0 || b.Nice != nil {
		t.Fatalf("b: umask %v nice %v", b.Umask, b.Nice)
	}
	for _, c := range []struct{ src, want string }{
		{`umask = "8"`, `c.toml:3:1: services.a.umask: "8" is not a umask: write up to 4 octal digits`},
		{`umask = "01777"`, `c.toml:3:1: services.a.umask: "01777" is not a umask`},
		{`umask = "u=rwx"`, `c.toml:3:1: services.a.umask: "u=rwx" is not a umask`},
		{`nice = 20`, `c.toml:3:1: services.a.nice: 20 is outside -20..19 (19 is the lowest priority, -20 the highest)`},
		{`nice = -21`, `c.toml:3:1: services.a.nice: -21 is outside -20..19`},
		{`umsak = "027"`, `c.toml:3:1: services.a.umsak: unknown key (did you mean "umask"?)`},
		{`priority = 5`, `c.toml:3:1: services.a.priority: unknown key (did you mean "nice"?)`},
	} {
		_, err := Parse("c.toml", "[services.a]\ncommand = [\"x\"]\n"+c.src+"\n")
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got  %v\n want %s", c.src, err, c.want)
		}
	}
}

func TestUserAndGroup(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`user = "no-such-user-x"`, `c.toml:3:1: services.a.user: no user "no-such-user-x" on this machine; create it (useradd) or name an existing user`},
		{`user = "roo"`, `c.toml:3:1: services.a.user: no user "roo" on this machine (did you mean "root"?)`},
		{"user = \"root\"\ngroup = \"no-such-group-x\"", `c.toml:4:1: services.a.group: no group "no-such-group-x" on this machine; create it (groupadd) or name an existing group`},
		{`group = "root"`, `c.toml:3:1: services.a.group: group needs user: write user = "root" as well to run as root with group root`},
		{`usr = "root"`, `c.toml:3:1: services.a.usr: unknown key (did you mean "user"?)`},
		{`run_as = "root"`, `c.toml:3:1: services.a.run_as: unknown key (did you mean "user"?)`},
	} {
		_, err := Parse("c.toml", "[services.a]\ncommand = [\"x\"]\n"+c.src+"\n")
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got  %v\n want %s", c.src, err, c.want)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("the rest needs root (user = another user)")
	}
	f, err := Parse("c.toml", "[services.a]\ncommand = [\"x\"]\nuser = \"root\"\n[services.b]\ncommand = [\"x\"]\nuser = \"root\"\ngroup = \"daemon\"\n")
	if err != nil {
		t.Fatal(err)
	}
	a := f.Services["a"].RunAs
	if a == nil || a.User != "root" || a.UID != 0 || a.GID != 0 || !a.Switch || a.Home == "" || !slices.Contains(a.Groups, 0) {
		t.Fatalf("root: %+v", a)
	}
	if env := a.Env(); !slices.Contains(env, "USER=root") || !slices.Contains(env, "LOGNAME=root") || !slices.Contains(env, "HOME="+a.Home) {
		t.Fatalf("env %q", env)
	}
	b := f.Services["b"].RunAs
	if b == nil || b.Group != "daemon" || b.GID == 0 || !slices.Contains(b.Groups, b.GID) {
		t.Fatalf("root with group daemon: %+v", b)
	}
}

// What Windows refuses, it refuses with the reason.
func TestWindowsRefusalsSayWhy(t *testing.T) {
	if !strings.Contains(errRunAsWindows.Error(), "run the daemon as that user") || !strings.Contains(umaskRefusedWindows, "remove umask") {
		t.Fatal("the Windows refusals do not say what to do")
	}
}

func TestPresetsOfCommonServers(t *testing.T) {
	f, err := Parse("c.toml", `[services.pg]
preset = "postgres"
command = ["postgres"]
[services.pg2]
preset = "postgres"
port = 5433
command = ["postgres"]
stop = { signal = "TERM" }
[services.redis]
preset = "redis"
command = ["redis-server"]
[services.ollama]
preset = "ollama"
command = ["ollama", "serve"]
[services.ollama2]
preset = "ollama"
port = 11500
command = ["ollama", "serve"]
[services.vllm]
preset = "vllm"
command = ["vllm", "serve", "m"]
[services.llama]
preset = "llamacpp"
command = ["llama-server", "-m", "m.gguf"]
`)
	if err != nil {
		t.Fatal(err)
	}
	s := f.Services
	if r := s["pg"].Ready; !slices.Equal(r.Exec, []string{"pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"}) || s["pg"].Stop.Signal != syscall.SIGINT || s["pg"].Stop.Grace != time.Minute {
		t.Errorf("postgres: %+v %+v", r, s["pg"].Stop)
	}
	if r := s["pg2"].Ready; r.Exec[5] != "5433" || s["pg2"].Stop.Signal != syscall.SIGTERM {
		t.Errorf("postgres on 5433, TERM of its own: %+v %+v", r, s["pg2"].Stop)
	}
	if r := s["redis"].Ready; !slices.Equal(r.Exec, []string{"redis-cli", "-h", "127.0.0.1", "-p", "6379", "PING"}) || s["redis"].Stop.Signal != syscall.SIGTERM {
		t.Errorf("redis: %+v", r)
	}
	if r := s["ollama"].Ready; r.HTTP != "http://127.0.0.1:11434/" || r.Body == nil || len(s["ollama"].Env) != 0 {
		t.Errorf("ollama: %+v env %q", r, s["ollama"].Env)
	}
	if r := s["ollama2"].Ready; r.HTTP != "http://127.0.0.1:11500/" || !slices.Equal(s["ollama2"].Env, []string{"OLLAMA_HOST=127.0.0.1:11500"}) {
		t.Errorf("ollama on 11500: %+v env %q", r, s["ollama2"].Env)
	}
	if r := s["vllm"].Ready; r.HTTP != "http://127.0.0.1:8000/health" || r.Timeout != 20*time.Minute {
		t.Errorf("vllm: %+v", r)
	}
	if r := s["llama"].Ready; r.HTTP != "http://127.0.0.1:8080/health" || !slices.Equal(s["llama"].Ports(), []int{8080}) {
		t.Errorf("llamacpp: %+v", r)
	}
	_, err = Parse("c.toml", "[services.x]\npreset = \"postgress\"\ncommand = [\"x\"]\n")
	if err == nil || !strings.Contains(err.Error(), `unknown preset "postgress" (did you mean "postgres"?) (known: a1111, forge, comfyui, postgres, redis, ollama, vllm, llamacpp)`) {
		t.Errorf("unknown preset: %v", err)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 2 {
		t.Errorf("position: %v", err)
	}
}
