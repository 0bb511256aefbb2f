package importer

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/corral-sh/corral/internal/config"
)

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{`gunicorn app:app -b 127.0.0.1:8000`, []string{"gunicorn", "app:app", "-b", "127.0.0.1:8000"}, false},
		{`sh -c "echo \"hi\" \$HOME \x"`, []string{"sh", "-c", `echo "hi" \$HOME \x`}, false},
		{`a 'b c'"d"e\ f`, []string{"a", "b cde f"}, false},
		{"a\n  b\t c", []string{"a", "b", "c"}, false},
		{`--save ""`, []string{"--save", ""}, false},
		{`unclosed "quote`, nil, true},
		{`trailing \`, nil, true},
	} {
		got, err := splitWords(tc.in)
		if (err != nil) != tc.err || !tc.err && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// The cases of supervisord's own shlex check (supervisor/compat.py) and of
// its environment= tests.
func TestEnvPairs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [][2]string
		err  bool
	}{
		{`foo="",bar=a`, [][2]string{{"foo", ""}, {"bar", "a"}}, false},
		{`KEY="val",KEY2=val2`, [][2]string{{"KEY", "val"}, {"KEY2", "val2"}}, false},
		{`A="x,y",B='it is',C=/usr/bin:/bin`, [][2]string{{"A", "x,y"}, {"B", "it is"}, {"C", "/usr/bin:/bin"}}, false},
		{"A=1,\n    B=2", [][2]string{{"A", "1"}, {"B", "2"}}, false},
		{`A=1 # a comment`, [][2]string{{"A", "1"}}, false},
		{`A=(x)+1.5-y`, [][2]string{{"A", "(x)+1.5-y"}}, false},
		{`URL=a@b`, nil, true}, // @ is a token of its own: quote the value
		{`A=1 B=2`, nil, true}, // a separator is needed
		{`A=`, nil, true},
		{`A="open`, nil, true},
	} {
		got, err := envPairs(tc.in)
		if (err != nil) != tc.err || !tc.err && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("envPairs(%q) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestPyFormat(t *testing.T) {
	sv := &svImport{o: &Options{LookupEnv: func(k string) (string, bool) { return map[string]string{"HOME": "/h"}[k], k == "HOME" }}}
	vars := map[string]any{"program_name": "w", "process_num": 3, "here": "/etc/x"}
	for _, tc := range []struct{ in, want, err string }{
		{"%(program_name)s_%(process_num)02d", "w_03", ""},
		{"%(process_num)d-%(process_num)3d|%(process_num)-3d|", "3-  3|3  |", ""},
		{"100%% of %(here)s", "100% of /etc/x", ""},
		{"%(ENV_HOME)s/app", "/h/app", ""},
		{"date +%Y", "", "write %% for a literal %"},
		{"%(ENV_NOPE)s", "", "NOPE is not set in the environment of the import"},
		{"%(nope)s", "", "cannot be expanded"},
		{"%(program_name)d", "", "needs a number"},
	} {
		got, err := sv.expand(&iniKey{name: "command", value: tc.in, pos: Pos{"f.conf", 7}}, vars, nil)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "f.conf:7: ")):
			t.Errorf("expand(%q) error %v; want f.conf:7: ...%s", tc.in, err, tc.err)
		}
	}
}

func TestDotenv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	src := "# comment\n" +
		"  export A=1\n" +
		"B = two words # trailing comment\n" +
		"C='$A literal # not a comment'\n" +
		"D=\"${A}-$B\\t\\\"q\\\" \\$A\"\n" +
		"E=\"multi\nline\"\n" +
		"F=$OUTSIDE/x\n" +
		"G=a#b\n" +
		"H=\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	vars, err := parseDotenv(path, ".env", func(k string) (string, bool) { return map[string]string{"OUTSIDE": "/o"}[k], k == "OUTSIDE" })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	lines := map[string]int{}
	for _, v := range vars {
		got[v.Key], lines[v.Key] = v.Value, v.Line
	}
	want := map[string]string{"A": "1", "B": "two words", "C": "$A literal # not a comment", "D": "1-two words\t\"q\" $A",
		"E": "multi\nline", "F": "/o/x", "G": "a#b", "H": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if lines["F"] != 8 || lines["E"] != 6 {
		t.Errorf("lines %v: F is on 8, E starts on 6", lines)
	}
	for _, v := range vars {
		if v.Key == "F" && !reflect.DeepEqual(v.FromEnv, []string{"OUTSIDE"}) {
			t.Errorf("F took %v from the environment, want [OUTSIDE]", v.FromEnv)
		}
	}

	for _, bad := range []struct {
		src  string
		line int
	}{{"A=1\nnot a line\n", 2}, {"A=1\nB='open\n", 2}, {"A=\"x\" y\n", 1}} {
		os.WriteFile(path, []byte(bad.src), 0o644)
		_, err := parseDotenv(path, ".env", func(string) (string, bool) { return "", false })
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Pos.Line != bad.line {
			t.Errorf("%q: error %v, want one at line %d", bad.src, err, bad.line)
		}
	}
}

// writeCase writes files (name → content) into a new directory.
func writeCase(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Input that supervisord itself would refuse is refused with file:line
// and what to do; nothing is half imported.
func TestSupervisordErrors(t *testing.T) {
	for _, tc := range []struct {
		name, conf, want string
	}{
		{"lone percent", "[program:a]\ncommand=date +%Y\n", "supervisord.conf:2: command: a % that is not %(name)s"},
		{"unset env", "[program:a]\ncommand=run\ndirectory=%(ENV_NO_SUCH_VAR_X)s\n", "supervisord.conf:3: directory: %(ENV_NO_SUCH_VAR_X)s: NO_SUCH_VAR_X is not set"},
		{"no command", "[program:a]\nautostart=true\n", "supervisord.conf:1: [program:a] has no command"},
		{"numprocs without process_num", "[program:a]\ncommand=run\nnumprocs=2\n", "supervisord.conf:1: numprocs > 1 needs %(process_num)"},
		{"bad autorestart", "[program:a]\ncommand=run\nautorestart=sometimes\n", "supervisord.conf:3: autorestart: \"sometimes\" is not true, false or unexpected"},
		// supervisord's inline comments: " ;" ends the value, so the quote
		// is never closed, for supervisord as for the importer.
		{"inline comment in a quote", "[program:a]\ncommand=sh -c \"sleep 1 ; exec run\"\n", "supervisord.conf:2: command: no closing quotation"},
		{"bad environment", "[program:a]\ncommand=run\nenvironment=URL=a@b\n", "supervisord.conf:3: environment: expected KEY=value pairs"},
		{"unknown group member", "[program:a]\ncommand=run\n[group:g]\nprograms=a,b\n", "supervisord.conf:4: [group:g] names unknown program b"},
		{"key before a section", "command=run\n", "supervisord.conf:1: a setting before the first [section] header"},
		{"no programs", "[supervisord]\nnodaemon=true\n", "supervisord.conf: no [program:NAME] sections"},
		{"bad stopsignal", "[program:a]\ncommand=run\nstopsignal=PAUSE\n", "supervisord.conf:3: stopsignal: \"PAUSE\" is not a signal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeCase(t, map[string]string{"supervisord.conf": tc.conf})
			_, err := ImportSupervisord(filepath.Join(dir, "supervisord.conf"), Options{OutDir: dir})
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant one starting %q", err, tc.want)
			}
		})
	}
}

// A value taken from the environment of the import, and a name corral
// would refuse, are said; a %(ENV_X)s that only passes the variable on is
// not written (services inherit corral's environment).
func TestSupervisordEnvironmentAndNames(t *testing.T) {
	dir := writeCase(t, map[string]string{"app.conf": `
[program:a:b]
command=run
[program:` + strings.Repeat("x", 70) + `]
command=run %(ENV_TOKEN)s
environment=TOKEN=%(ENV_TOKEN)s,OTHER="%(ENV_TOKEN)s-2"
`})
	_, err := ImportSupervisord(filepath.Join(dir, "app.conf"), Options{OutDir: dir})
	if err == nil || !strings.Contains(err.Error(), `invalid program name "a:b"`) {
		t.Fatalf("a program name with ':' was not refused: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "app.conf"), []byte(`
[program:`+strings.Repeat("x", 70)+`]
command=run %(ENV_TOKEN)s
environment=TOKEN=%(ENV_TOKEN)s,OTHER="%(ENV_TOKEN)s-2"
`), 0o644)
	res, err := ImportSupervisord(filepath.Join(dir, "app.conf"), Options{OutDir: dir,
		LookupEnv: func(k string) (string, bool) { return "t0k", k == "TOKEN" }})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Services[0]
	if len(s.Name) != 64 || !reflect.DeepEqual(s.Command, []string{"run", "t0k"}) {
		t.Errorf("service %q runs %q", s.Name, s.Command)
	}
	if len(s.Env) != 1 || s.Env[0] != (EnvVar{"OTHER", "t0k-2", "app.conf:4"}) {
		t.Errorf("env %+v: want only OTHER (TOKEN passes through)", s.Env)
	}
	var kinds []string
	for _, f := range s.Findings {
		kinds = append(kinds, f.Kind.String()+" "+f.Setting)
	}
	want := []string{"not needed TOKEN=%(ENV_TOKEN)s", "approximated command = run %(ENV_TOKEN)s",
		"approximated environment = TOKEN=%(ENV_TOKEN)s,OTHER=\"%(ENV_TOKEN)s-2\"", "approximated name \"" + strings.Repeat("x", 70) + "\""}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("findings\n%q\nwant\n%q", kinds, want)
	}
}

func TestProcfileErrors(t *testing.T) {
	dir := writeCase(t, map[string]string{"Procfile": "# nothing\n"})
	if _, err := ImportProcfile(filepath.Join(dir, "Procfile"), Options{OutDir: dir}); err == nil || !strings.Contains(err.Error(), "Procfile: no process types") {
		t.Errorf("an empty Procfile: %v", err)
	}
	dir = writeCase(t, map[string]string{"Procfile": "web: run\n", ".env": "A=1\nB=\"open\n"})
	if _, err := ImportProcfile(filepath.Join(dir, "Procfile"), Options{OutDir: dir}); err == nil || !strings.HasPrefix(err.Error(), ".env:2: B: no closing quote") {
		t.Errorf("a bad .env: %v", err)
	}
	dir = writeCase(t, map[string]string{"Procfile": "-f Procfile\n"})
	if _, err := ImportProcfile(filepath.Join(dir, "Procfile"), Options{OutDir: dir}); err == nil || !strings.Contains(err.Error(), "includes itself") {
		t.Errorf("a Procfile nesting itself: %v", err)
	}
	if _, err := ImportProcfile(filepath.Join(dir, "missing"), Options{OutDir: dir}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing Procfile: %v", err)
	}
}

func TestPM2Errors(t *testing.T) {
	for _, tc := range []struct{ name, file, src, want string }{
		{"bad json", "ecosystem.json", "{\n  \"apps\": [\n    {\"name\": \"a\",}\n  ]\n}\n", "ecosystem.json:3: not valid JSON"},
		{"bad yaml", "ecosystem.yml", "apps:\n  - name: a\n    script: x\n  - name: \"b\n", "ecosystem.yml:4: not valid YAML: found unexpected end of stream"},
		{"no apps", "ecosystem.json", `{"name": "a"}`, "ecosystem.json:1: no apps"},
		{"no script", "ecosystem.json", `{"apps": [{"name": "a"}]}`, "ecosystem.json:1: an app without script"},
		{"bad memory", "ecosystem.json", "{\"apps\": [{\"script\": \"a\",\n \"max_memory_restart\": \"lots\"}]}", "ecosystem.json:2: max_memory_restart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeCase(t, map[string]string{tc.file: tc.src})
			_, err := ImportPM2(context.Background(), filepath.Join(dir, tc.file), Options{OutDir: dir})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant one starting %q", err, tc.want)
			}
		})
	}
}

func TestPM2JavaScriptWithoutNode(t *testing.T) {
	dir := writeCase(t, map[string]string{"ecosystem.config.js": "module.exports = {apps: []}\n"})
	t.Setenv("PATH", t.TempDir()) // no node in it
	_, err := ImportPM2(context.Background(), filepath.Join(dir, "ecosystem.config.js"), Options{OutDir: dir})
	if !errors.Is(err, ErrNoNode) || !strings.Contains(err.Error(), "ecosystem.json or ecosystem.yaml") {
		t.Fatalf("error %v: want ErrNoNode, saying what to do", err)
	}
}

func TestPM2JavaScriptThatThrows(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed (Debian: apt-get install nodejs)")
	}
	dir := writeCase(t, map[string]string{"ecosystem.config.js": "throw new Error('no config for you')\n"})
	_, err := ImportPM2(context.Background(), filepath.Join(dir, "ecosystem.config.js"), Options{OutDir: dir})
	if err == nil || !strings.Contains(err.Error(), "no config for you") || !strings.Contains(err.Error(), "node could not evaluate ecosystem.config.js") {
		t.Fatalf("error %v: want node's message", err)
	}
}

func TestDetect(t *testing.T) {
	for name, want := range map[string]Format{
		"Procfile": Procfile, "Procfile.dev": Procfile, "/etc/supervisor/supervisord.conf": Supervisord, "conf.d/web.conf": Supervisord,
		"app.ini": Supervisord, "ecosystem.config.js": PM2, "ecosystem.config.cjs": PM2, "ecosystem.json": PM2, "process.yml": PM2,
		"pm2.yaml": PM2, "ecosystem.config.mjs": PM2,
	} {
		if got, ok := Detect(name); !ok || got != want {
			t.Errorf("Detect(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := Detect("run.sh"); ok {
		t.Error("Detect(run.sh) guessed a format")
	}
}

// Whatever a value holds, it is written as a TOML string that decodes to
// it, and comments cannot be broken out of.
func TestTOMLQuoting(t *testing.T) {
	odd := []string{"plain", `quote " and \ backslash`, "new\nline\r\ttab", "\x01\x1f\x7f", "ünïcödé ✓", "# not a comment", "", "\xff invalid"}
	r := &Result{Format: Procfile, Sources: []string{"Procfile\nX = 1"}}
	for i, v := range odd {
		s := &Service{Name: "s" + string(rune('a'+i)), Origin: Pos{"Procfile", i + 1}, Shell: v, Dir: "",
			Env: []EnvVar{{Key: "K" + string(rune('A'+i)), Value: v, Comment: v}, {Key: "with.dot", Value: v}}}
		s.find(Pos{"Procfile", 1}, Dropped, "a\nb = 1", "note\n[services.evil]")
		r.Services = append(r.Services, s)
	}
	var got struct {
		Services map[string]struct {
			Shell string
			Env   map[string]string
		}
	}
	text := r.TOML()
	md, err := toml.Decode(string(text), &got)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if len(md.Undecoded()) > 0 || len(got.Services) != len(odd) {
		t.Fatalf("decoded %d services, undecoded %v:\n%s", len(got.Services), md.Undecoded(), text)
	}
	for i, v := range odd {
		s := got.Services["s"+string(rune('a'+i))]
		want := strings.ToValidUTF8(v, "\uFFFD")
		if s.Shell != want || s.Env["K"+string(rune('A'+i))] != want || s.Env["with.dot"] != want {
			t.Errorf("%q came back as %q / %q", v, s.Shell, s.Env)
		}
	}
}

// Every file the importer writes loads with the daemon's parser: a name
// with odd characters and a dir outside the output directory included.
func TestImportedFileLoads(t *testing.T) {
	dir := writeCase(t, map[string]string{"Procfile": "_web: run --x\n_web: again\n" + strings.Repeat("y", 80) + ": long\n"})
	out := t.TempDir()
	res, err := ImportProcfile(filepath.Join(dir, "Procfile"), Options{OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse(filepath.Join(out, "corral.toml"), string(res.TOML()))
	if err != nil {
		t.Fatalf("%v\n%s", err, res.TOML())
	}
	if got := f.Names(); !reflect.DeepEqual(got, []string{"web", "web-2", strings.Repeat("y", 64)}) {
		t.Errorf("names %q", got)
	}
	if s := f.Services["web"]; s == nil || s.Dir != dir {
		t.Errorf("dir %q, want the Procfile's %q", s.Dir, dir)
	}
}

// The .env is the services' env_file where corral reads it as foreman
// does; a variable it would read otherwise (a $VAR foreman expands) is
// also in env, which wins, so that every variable has foreman's value.
// A .env corral would refuse is copied into env instead, and said.
func TestProcfileEnvFile(t *testing.T) {
	src := "A=1\nB=\"${A}-x\"\nC=$OUTSIDE/c\nD='lit $A'\nE=plain # comment\nPORT=6000\nA=2\n"
	dir := writeCase(t, map[string]string{"Procfile": "web: run\nworker: work\n", ".env": src})
	o := Options{OutDir: dir, LookupEnv: func(k string) (string, bool) { return "/o", k == "OUTSIDE" }}
	res, err := ImportProcfile(filepath.Join(dir, "Procfile"), o)
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse(filepath.Join(dir, "corral.toml"), string(res.TOML()))
	if err != nil {
		t.Fatalf("%v\n%s", err, res.TOML())
	}
	for name, port := range map[string]string{"web": "6000", "worker": "6100"} {
		s := f.Services[name]
		if len(s.EnvFiles) != 1 || s.EnvFiles[0].Path != filepath.Join(dir, ".env") {
			t.Fatalf("%s: env_file %+v\n%s", name, s.EnvFiles, res.TOML())
		}
		fromFile, err := config.ReadEnv(s.EnvFiles)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, kv := range append(fromFile, s.Env...) { // env wins
			k, v, _ := strings.Cut(kv, "=")
			got[k] = v
		}
		// B was read while A was 1, as foreman reads it.
		want := map[string]string{"A": "2", "B": "1-x", "C": "/o/c", "D": "lit $A", "E": "plain", "PORT": port}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s starts with %q\nwant %q", name, got, want)
		}
		if len(s.Env) != 3 { // B, C and PORT
			t.Errorf("%s: env %q: only what env_file reads otherwise, and PORT", name, s.Env)
		}
	}
	var settings []string
	for _, fd := range res.Findings {
		settings = append(settings, fd.Pos.String()+" "+fd.Setting)
	}
	if want := []string{"Procfile one process exits", "Procfile stop", ".env env_file", ".env:2 B", ".env:3 C"}; !reflect.DeepEqual(settings, want) {
		t.Errorf("findings %q\nwant %q", settings, want)
	}

	// A name corral refuses in an env file: copied, and said.
	dir = writeCase(t, map[string]string{"Procfile": "web: run\n", ".env": "X=1\napp.mode=dev\n"})
	out := t.TempDir() // the .env is outside the output directory
	res, err = ImportProcfile(filepath.Join(dir, "Procfile"), Options{OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Services[0]
	if s.EnvFile != "" || len(s.Env) != 3 || s.Env[1] != (EnvVar{"app.mode", "dev", filepath.Join(dir, ".env") + ":2"}) {
		t.Errorf("env_file %q, env %+v: want every variable copied", s.EnvFile, s.Env)
	}
	if fd := res.Findings[2]; fd.Setting != "env_file" || fd.Pos.Line != 2 || !strings.Contains(fd.Note, "not written as env_file") {
		t.Errorf("finding %v", fd)
	}
	if _, err := config.Parse(filepath.Join(out, "corral.toml"), string(res.TOML())); err != nil {
		t.Fatalf("%v\n%s", err, res.TOML())
	}
	// Outside the output directory, env_file is absolute.
	dir = writeCase(t, map[string]string{"Procfile": "web: run\n", ".env": "X=1\n"})
	if res, err = ImportProcfile(filepath.Join(dir, "Procfile"), Options{OutDir: out}); err != nil {
		t.Fatal(err)
	}
	if got := res.Services[0].EnvFile; got != filepath.ToSlash(filepath.Join(dir, ".env")) {
		t.Errorf("env_file %q, want the absolute path", got)
	}
}

// user=, umask= and [group:x], of the programs and of [supervisord].
func TestSupervisordUserUmaskGroups(t *testing.T) {
	dir := writeCase(t, map[string]string{"supervisord.conf": `
[supervisord]
user=alice
umask=027

[program:a]
command=run a

[program:b]
command=run b
user=bob
umask=0o2

[program:c]
command=run c
user=0

[program:d]
command=run d
user=1000
process_name=d%(process_num)d
numprocs=2

[group:my group]
programs=d,a
`})
	res, err := ImportSupervisord(filepath.Join(dir, "supervisord.conf"), Options{OutDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range res.Services {
		got[s.Name] = s.User + " " + s.Umask
	}
	if want := map[string]string{"a": "alice 027", "b": "bob 002", "c": "root 027", "d0": " 027", "d1": " 027"}; !reflect.DeepEqual(got, want) {
		t.Errorf("user umask %q\nwant %q", got, want)
	}
	if len(res.Groups) != 1 || res.Groups[0].Name != "my-group" || !reflect.DeepEqual(res.Groups[0].Members, []string{"d0", "d1", "a"}) {
		t.Errorf("groups %+v", res.Groups)
	}
	all := ""
	for _, f := range res.AllFindings() {
		all += f.String() + "\n"
	}
	for _, want := range []string{
		`supervisord.conf:3: [supervisord] user = alice: approximated: supervisord switches to this user as it starts`,
		`supervisord.conf:4: [supervisord] umask = 027: approximated: supervisord sets it when it daemonizes`,
		`supervisord.conf:24: [group:my group]: approximated: the group is named "my-group"`,
		`supervisord.conf:11: b: user = bob: approximated: written as user = "bob": supervisord runs as alice ([supervisord] user) and cannot switch to bob`,
		`supervisord.conf:16: c: user = 0: approximated: written as user = "root": supervisord runs as alice`,
		`supervisord.conf:20: d0: user = 1000: not imported: corral's user takes a user name, not a uid`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no finding %q in\n%s", want, all)
		}
	}
	var decoded struct {
		Groups   map[string][]string
		Services map[string]struct{ User, Umask string }
	}
	if _, err := toml.Decode(string(res.TOML()), &decoded); err != nil || !reflect.DeepEqual(decoded.Groups["my-group"], []string{"d0", "d1", "a"}) ||
		decoded.Services["b"].User != "bob" || decoded.Services["b"].Umask != "002" {
		t.Errorf("%v %+v\n%s", err, decoded, res.TOML())
	}

	os.WriteFile(filepath.Join(dir, "supervisord.conf"), []byte("[program:a]\ncommand=run\numask=089\n"), 0o644)
	if _, err := ImportSupervisord(filepath.Join(dir, "supervisord.conf"), Options{OutDir: dir}); err == nil || !strings.HasPrefix(err.Error(), "supervisord.conf:3: umask: \"089\" is not an octal number") {
		t.Errorf("a bad umask: %v", err)
	}
}

// uid (user) and gid, and namespaces as groups.
func TestPM2UserAndNamespace(t *testing.T) {
	dir := writeCase(t, map[string]string{"ecosystem.json": `{"apps": [
  {"name": "a", "script": "a.js", "uid": "www", "gid": "web", "namespace": "shop"},
  {"name": "b", "script": "b.js", "gid": "web", "namespace": "jobs"},
  {"name": "c", "script": "c.js", "user": 1001, "namespace": "shop", "instances": 2}
]}`})
	res, err := ImportPM2(context.Background(), filepath.Join(dir, "ecosystem.json"), Options{OutDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range res.Services {
		got[s.Name] = s.User + ":" + s.Group
	}
	if want := map[string]string{"a": "www:web", "b": ":", "c-0": ":", "c-1": ":"}; !reflect.DeepEqual(got, want) {
		t.Errorf("user:group %q\nwant %q", got, want)
	}
	var groups []string
	for _, g := range res.Groups {
		groups = append(groups, g.Name+"="+strings.Join(g.Members, ","))
	}
	if want := []string{"shop=a,c-0,c-1", "jobs=b"}; !reflect.DeepEqual(groups, want) {
		t.Errorf("groups %q, want %q", groups, want)
	}
	all := ""
	for _, f := range res.AllFindings() {
		all += f.String() + "\n"
	}
	for _, want := range []string{
		`ecosystem.json:2: a: user = "www": approximated: written as user = "www" and group = "web"`,
		`ecosystem.json:3: b: gid = "web": not imported: a group without a user`,
		`ecosystem.json:4: c-0: user = 1001: not imported: PM2 looks uid up as a user name`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no finding %q in\n%s", want, all)
		}
	}
	if strings.Contains(all, "namespace") {
		t.Errorf("a namespace is a group, not a finding:\n%s", all)
	}
}
