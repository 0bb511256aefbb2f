package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// A definition given as JSON means what the same table means in the file.
func TestDefinitionIsTheTOMLTable(t *testing.T) {
	dir := t.TempDir()
	def := `{"command": ["python", "launch.py"], "dir": ".", "env": {"A": "1"}, "autostart": false,
		"ready": {"http": "http://127.0.0.1:7860/", "timeout": "90s"}, "restart": {"policy": "always", "burst": 0},
		"limits": {"processes": 64, "memory": "1GiB"}, "profiles": {"guarded": ["--medvram"]}, "after": ["db"]}`
	got, err := ParseDefinition(dir, "web", []byte(def))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(filepath.Join(dir, "corral.toml"), `
[services.db]
command = ["db"]
[services.web]
command = ["python", "launch.py"]
dir = "."
env = { A = "1" }
autostart = false
ready = { http = "http://127.0.0.1:7860/", timeout = "90s" }
restart = { policy = "always", burst = 0 }
limits = { processes = 64, memory = "1GiB" }
profiles = { guarded = ["--medvram"] }
after = ["db"]
`)
	if err != nil {
		t.Fatal(err)
	}
	want := f.Services["web"]
	if got.Ready.Timeout != 90*time.Second || got.Dir != dir || got.Autostart || got.Limits.Memory != 1<<30 {
		t.Fatalf("definition: %+v", got)
	}
	if !reflect.DeepEqual(got.Argv, want.Argv) || !reflect.DeepEqual(got.Env, want.Env) || !reflect.DeepEqual(got.After, want.After) ||
		got.Restart != want.Restart || got.Limits != want.Limits || !reflect.DeepEqual(got.Profiles, want.Profiles) {
		t.Fatalf("definition differs from the table:\n got %+v\nwant %+v", got, want)
	}
	// after is checked against the other services.
	base, err := Parse(filepath.Join(dir, "corral.toml"), "[services.db]\ncommand = [\"db\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	merged, err := With(base, map[string]*Service{"web": got})
	if err != nil || len(merged.Services) != 2 || len(base.Services) != 1 {
		t.Fatalf("with: %v, %v (the file's own must stay as it was: %d)", merged, err, len(base.Services))
	}
}

// A bad definition is refused with every problem's key, and no position
// of the TOML nobody wrote.
func TestDefinitionErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ def, want string }{
		{`{"comand": ["x"]}`, `services.web.comand: unknown key (did you mean "command"?)`},
		{`{"command": ["x"], "restart": {"backoff": "soon"}}`, `services.web.restart.backoff: "soon" is not a duration`},
		{`{"command": "x"}`, `services.web.command: expected a list of strings`},
		{`{"command": ["x"], "env": {"PORT": 8080}}`, `services.web.env.PORT: expected a string`},
		{`{"command": ["x"], "autostart": null}`, `services.web.autostart: null is not a value`},
		{`{"command": ["x"], "after": "db"}`, `services.web.after: expected a list of service names`},
		{`{"command": ["x"], "dir": "nowhere"}`, `services.web.dir: ` + filepath.Join(dir, "nowhere") + ` does not exist`},
		{`{"shell": "x", "command": ["x"]}`, `services.web.shell: give either command`},
		{`{}`, `services.web: no command`},
		{`["x"]`, `must be a JSON object`},
		{`{"command": ["x"]} {}`, `more than one JSON value`},
		{`{"command": ["x"`, `not JSON`},
	} {
		_, err := ParseDefinition(dir, "web", []byte(tc.def))
		var de *DefinitionError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.def, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), ":1:") || strings.Contains(err.Error(), "(definition of") {
			t.Errorf("%s: a position of the rendered TOML: %v", tc.def, err)
		}
	}
	if _, err := ParseDefinition(dir, "bad name", []byte(`{"command": ["x"]}`)); err == nil || !strings.Contains(err.Error(), "names use letters") {
		t.Errorf("bad name: %v", err)
	}
}

func TestWithChecksAcrossServices(t *testing.T) {
	dir := t.TempDir()
	base, err := Parse(filepath.Join(dir, "corral.toml"), "[services.db]\ncommand = [\"db\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	def := func(js string) *Service {
		s, err := ParseDefinition(dir, "x", []byte(js))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		extra map[string]*Service
		want  string
	}{
		{map[string]*Service{"db": def(`{"command": ["x"]}`)}, "services.db: is defined in " + filepath.Join(dir, "corral.toml")},
		{map[string]*Service{"a": def(`{"command": ["x"], "after": ["nope"]}`)}, `services.a.after: unknown service "nope"`},
		{map[string]*Service{"a": def(`{"command": ["x"], "after": ["b"]}`), "b": def(`{"command": ["x"], "after": ["a"]}`)}, "cycle"},
	} {
		if _, err := With(base, tc.extra); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.extra, err, tc.want)
		}
	}
}

func TestCommandWithArgs(t *testing.T) {
	argv := &Service{Name: "a", Argv: []string{"prog", "x"}, Profiles: map[string][]string{"p": {"--p"}}}
	shell := &Service{Name: "s", Argv: []string{"/bin/sh", "-c", "run.sh --api"}, Shell: true, Profiles: map[string][]string{"p": {"--p"}}}
	cmdShell := &Service{Name: "w", Argv: []string{"cmd.exe", "/d", "/s", "/c", "webui.bat"}, Shell: true}
	bat := &Service{Name: "b", Argv: []string{`C:\sd\webui-user.BAT`}}
	cmdArgv := &Service{Name: "c", Argv: []string{`C:\Windows\System32\CMD.EXE`, "/c", "webui-user.bat"}}
	for _, tc := range []struct {
		s       *Service
		goos    string
		profile string
		args    []string
		want    []string
		err     string
	}{
		{s: argv, goos: "linux", profile: "p", args: []string{"a b", "$HOME"}, want: []string{"prog", "x", "--p", "a b", "$HOME"}},
		{s: shell, goos: "linux", profile: "p", args: []string{"--port", "7860", "a b", "it's", "$(rm -rf ~)", ""},
			want: []string{"/bin/sh", "-c", `run.sh --api --p --port 7860 'a b' 'it'\''s' '$(rm -rf ~)' ''`}},
		{s: cmdShell, goos: "windows", args: []string{"--ckpt", `C:\models\a b\`, "x&y"},
			want: []string{"cmd.exe", "/d", "/s", "/c", `webui.bat --ckpt "C:\models\a b\\" "x&y"`}},
		{s: cmdShell, goos: "windows", args: []string{"%PATH%"}, err: `argument 1 ("%PATH%") has %; it is a shell = command line`},
		{s: bat, goos: "windows", args: []string{`say "hi"`}, err: `has "; its command runs through cmd.exe`},
		// cmd.exe as the program: the incident's wrapper. Go's escaping
		// leaves & bare, so the same refusal applies (the spawn quotes the
		// rest for cmd.exe).
		{s: cmdArgv, goos: "windows", args: []string{`x"&echo INJECTED&"`}, err: `has "; its command runs through cmd.exe`},
		{s: cmdArgv, goos: "windows", args: []string{"%USERPROFILE%"}, err: `has %; its command runs through cmd.exe`},
		{s: cmdArgv, goos: "windows", args: []string{"x&echo"}, want: []string{`C:\Windows\System32\CMD.EXE`, "/c", "webui-user.bat", "x&echo"}},
		{s: bat, goos: "linux", args: []string{"%x%"}, want: []string{`C:\sd\webui-user.BAT`, "%x%"}},
		{s: argv, goos: "windows", args: []string{`100% "sure"!`}, want: []string{"prog", "x", `100% "sure"!`}},
		{s: argv, goos: "linux", args: []string{"a\x00"}, err: "NUL"},
		// Appended words that would not be the program's arguments.
		{s: &Service{Name: "c", Argv: []string{"/bin/sh", "-c", "run # the server"}, Shell: true}, goos: "linux", args: []string{"--x"}, err: "has a # comment"},
		{s: &Service{Name: "c", Argv: []string{"/bin/sh", "-c", "run &"}, Shell: true}, goos: "linux", args: []string{"--x"}, err: `ends with "&"`},
		{s: &Service{Name: "c", Argv: []string{"/bin/sh", "-c", "cd x\nrun"}, Shell: true}, goos: "linux", args: []string{"--x"}, err: "more than one line"},
		{s: &Service{Name: "c", Argv: []string{"/bin/sh", "-c", "run a#b"}, Shell: true}, goos: "linux", args: []string{"--x"}, want: []string{"/bin/sh", "-c", "run a#b --x"}},
		{s: argv, goos: "linux", profile: "nope", err: `no profile "nope"`},
	} {
		got, err := tc.s.commandWith(tc.goos, tc.profile, tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %v on %s: %v, want an error with %q", tc.s.Name, tc.args, tc.goos, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %v on %s: %q, %v; want %q", tc.s.Name, tc.args, tc.goos, got, err, tc.want)
		}
	}
	if got, _ := argv.CommandWith("", nil); !reflect.DeepEqual(got, argv.Argv) || &got[0] == &argv.Argv[0] {
		t.Errorf("no args: %q (a copy of the command)", got)
	}
}

func TestLaunchEnv(t *testing.T) {
	got, err := LaunchEnv(map[string]string{"B": "2", "A": "", "HF_TOKEN": "x=y"})
	if err != nil || !reflect.DeepEqual(got, []string{"A=", "B=2", "HF_TOKEN=x=y"}) {
		t.Fatalf("%q, %v", got, err)
	}
	for env, want := range map[string]string{"": "invalid", "A=B": "invalid", "CORRAL_INSTANCE": "set by corral", "CORRAL_STATE": "set by corral"} {
		if _, err := LaunchEnv(map[string]string{env: "v"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v", env, err)
		}
	}
	if _, err := LaunchEnv(map[string]string{"A": "\x00"}); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("NUL value: %v", err)
	}
	s := &Service{Env: []string{"A=1", "COMMANDLINE_ARGS=--api", "B=2"}}
	if c := s.WithEnv([]string{"COMMANDLINE_ARGS=--api --api-server-stop"}); !reflect.DeepEqual(c.Env, []string{"A=1", "B=2", "COMMANDLINE_ARGS=--api --api-server-stop"}) || len(s.Env) != 3 || s.Env[1] != "COMMANDLINE_ARGS=--api" {
		t.Errorf("with env: %q (service's: %q)", c.Env, s.Env)
	}
}

// docs/openapi.json's ServiceDefinition (the body of PUT
// /v1/services/{name}) has the keys of a [services.NAME] table, and
// nothing else, down to its tables' keys.
func TestOpenAPIDefinitionIsTheTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(at string, n *node, schema map[string]any)
	walk = func(at string, n *node, schema map[string]any) {
		props, _ := schema["properties"].(map[string]any)
		var want, got []string
		for k := range n.keys {
			want = append(want, k)
		}
		for k := range props {
			got = append(got, k)
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(want, got) {
			t.Errorf("%s: the table has %v, the document %v", at, want, got)
		}
		if schema["additionalProperties"] != false {
			t.Errorf("%s: the document takes other keys too", at)
		}
		for k, c := range n.keys {
			if sub, ok := props[k].(map[string]any); ok && c.kind == kTable && len(c.keys) > 0 {
				walk(at+"."+k, c, sub)
			}
		}
	}
	def, _ := doc.Components.Schemas["ServiceDefinition"].(map[string]any)
	walk("services.NAME", serviceNode, def)
}
