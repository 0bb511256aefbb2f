package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The schema that words type errors and hints has every key of the raw
// structs the decoder fills, and no other.
func TestSchemaMatchesRaw(t *testing.T) {
	var walk func(path string, n *node, typ reflect.Type)
	walk = func(path string, n *node, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if n == nil {
			t.Errorf("%s: in the raw structs, not in the schema", path)
			return
		}
		switch typ.Kind() {
		case reflect.Struct:
			if n.kind != kTable || n.each != nil {
				t.Errorf("%s: a table in the raw structs, not in the schema", path)
				return
			}
			var tags []string
			for f := range typ.Fields() {
				tag := f.Tag.Get("toml")
				tags = append(tags, tag)
				walk(path+"."+tag, n.keys[tag], f.Type)
			}
			for k := range n.keys {
				if !slices.Contains(tags, k) {
					t.Errorf("%s.%s: in the schema, not in the raw structs", path, k)
				}
			}
		case reflect.Map:
			if n.kind != kTable || n.each == nil {
				t.Errorf("%s: a table of names in the raw structs, not in the schema", path)
				return
			}
			walk(path+".NAME", n.each, typ.Elem())
		case reflect.Slice:
			if n.kind != kStrings {
				t.Errorf("%s: a list in the raw structs, schema kind %d", path, n.kind)
			}
		case reflect.Bool:
			if n.kind != kBool {
				t.Errorf("%s: a bool in the raw structs, schema kind %d", path, n.kind)
			}
		case reflect.Int:
			if n.kind != kInt {
				t.Errorf("%s: an int in the raw structs, schema kind %d", path, n.kind)
			}
		case reflect.Float64:
			if n.kind != kNumber {
				t.Errorf("%s: a float in the raw structs, schema kind %d", path, n.kind)
			}
		case reflect.String:
			if n.kind != kString {
				t.Errorf("%s: a string in the raw structs, schema kind %d", path, n.kind)
			}
		case reflect.Interface:
			if n.kind != kSize && !n.flex() {
				t.Errorf("%s: any in the raw structs, schema kind %d", path, n.kind)
			}
		default:
			t.Errorf("%s: raw type %v not covered", path, typ)
		}
	}
	walk("", schema, reflect.TypeFor[rawFile]())
}

// Type errors are in the user's words, at the value, with what would be
// accepted; the TOML library's wording (config.rawProbe, []any, slice)
// never shows.
func TestTypeErrorsInUsersWords(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"[services.web]\ncommand = [\"x\"]\nready = \"http://127.0.0.1:1/\"\n",
			`c.toml:3:9: services.web.ready: expected a table ({ http = "..." }) or a list of them ([{ http = "..." }, { log = "..." }]), found a string ("http://127.0.0.1:1/")`},
		{"[services.web]\ncommand = [\"x\"]\nready = [{ http = \"http://127.0.0.1:1/\" }, \"x\"]\n",
			`c.toml:3:44: services.web.ready[1]: expected a table ({ http = "..." }), found a string ("x")`},
		{"[services.web]\ncommand = [\"x\"]\nready = [{ http = \"http://127.0.0.1:1/\" }, { tcp = 1 }]\n",
			`c.toml:3:52: services.web.ready[1].tcp: expected a string ("host:port"), found an integer (1)`},
		{"[services.web]\ncommand = [\"x\"]\nready = []\n",
			`c.toml:3:9: services.web.ready: expected a table ({ http = "..." }) or a list of them ([{ http = "..." }, { log = "..." }]), found an empty list`},
		{"[services.web]\ncommand = [\"x\"]\nenv_file = 3\n",
			`c.toml:3:12: services.web.env_file: expected a path (".env"), a table ({ path = ".env.local", optional = true }) or a list of them, found an integer (3)`},
		{"[services.web]\ncommand = [\"x\"]\nenv_file = [\".env\", { path = 1 }]\n",
			`c.toml:3:30: services.web.env_file[1].path: expected a string (a path), found an integer (1)`},
		{"include = \"conf.d/*.toml\"\ngroups = { sd = \"webui\" }\n",
			`c.toml:2:17: groups.sd: expected a list of service names (["webui", "comfyui"]), found a string ("webui")`},
		{"include = [1]\n",
			`c.toml:1:11: include: expected a list of paths or globs (["conf.d/*.toml"]), found a list holding an integer (1)`},
		{"[services.web]\ncommand = [\"x\"]\nnice = \"10\"\n",
			`c.toml:3:8: services.web.nice: expected an integer from -20 to 19, found a string ("10")`},
		{"[services.a]\ncommand = \"python main.py\"\n",
			`c.toml:2:11: services.a.command: expected a list of strings (["program", "arg"]), found a string ("python main.py")`},
		{"[services.a]\ncommand = [\"x\", 3]\n",
			`c.toml:2:11: services.a.command: expected a list of strings (["program", "arg"]), found a list holding an integer (3)`},
		{"[services.a]\ncommand = [\"x\"]\nautostart = \"yes\"\n",
			`c.toml:3:13: services.a.autostart: expected true or false, found a string ("yes")`},
		{"[services.a]\ncommand = [\"x\"]\nenv = { DEBUG = 1 }\n",
			`c.toml:3:17: services.a.env.DEBUG: expected a string (env values are strings: write "1", not 1), found an integer (1)`},
		{"[services.a]\ncommand = [\"x\"]\nprofiles = { low = \"--lowvram\" }\n",
			`c.toml:3:20: services.a.profiles.low: expected a list of strings (["--medvram"]), found a string ("--lowvram")`},
		{"[services.a]\ncommand = [\"x\"]\nport = \"7860\"\n",
			`c.toml:3:8: services.a.port: expected an integer (a port number), found a string ("7860")`},
		{"[services.a]\ncommand = [\"x\"]\nlimits = { processes = 1.5 }\n",
			`c.toml:3:24: services.a.limits.processes: expected an integer (a number of processes), found a number (1.5)`},
		{"[services.a]\ncommand = [\"x\"]\n[services.a.stop]\ngrace = 10\n",
			`c.toml:4:9: services.a.stop.grace: expected a duration string ("10s"), found an integer (10)`},
		{"services = 3\n", `c.toml:1:12: services: expected a table of services ([services.NAME]), found an integer (3)`},
		{"[[services.a]]\ncommand = [\"x\"]\n",
			`c.toml:1:1: services.a: expected a table ([services.NAME] with command = ["program", "arg"]), found a list of tables ([[...]])`},
	} {
		_, err := Parse("c.toml", tc.src)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got  %v\n want %s", tc.src, err, tc.want)
		}
		if err != nil {
			for _, lib := range []string{"config.raw", "[]any", "slice", "incompatible types", "type mismatch"} {
				if strings.Contains(err.Error(), lib) {
					t.Errorf("%q: the TOML library's words (%s) in %v", tc.src, lib, err)
				}
			}
		}
	}
}

// Unknown keys get a hint only from the keys of their own table (or where
// the key belongs), one error per unknown key, and no hint at all when
// nothing is close.
func TestUnknownKeyHints(t *testing.T) {
	const hint = "; docs/configuration.md lists every key"
	for _, tc := range []struct{ src, want string }{
		{"[service.web]\ncommand = [\"x\"]\n", `c.toml:1:1: service: unknown key (did you mean "services"?)` + hint},
		{"[services.a]\ncommand = [\"x\"]\n\n[service.b]\nshell = \"y\"\n", `c.toml:4:1: service: unknown key (did you mean "services"?)` + hint},
		{"[services.a]\ncomand = [\"x\"]\n", `c.toml:2:1: services.a.comand: unknown key (did you mean "command"?)` + hint},
		{"[services.a]\ncommnad = [\"x\"]\n", `c.toml:2:1: services.a.commnad: unknown key (did you mean "command"?)` + hint},
		{"[services.a]\ncmd = [\"x\"]\n", `c.toml:2:1: services.a.cmd: unknown key (did you mean "command"?)` + hint},
		{"[services.a]\ncommand = [\"x\"]\nworking_dir = \"/\"\n", `c.toml:3:1: services.a.working_dir: unknown key (did you mean "dir"?)` + hint},
		{"[services.a]\ncommand = [\"x\"]\nreddy = { http = \"http://127.0.0.1:1/\" }\n", `c.toml:3:1: services.a.reddy: unknown key (did you mean "ready"?)` + hint},
		{"[services.a]\ncommand = [\"x\"]\ntimeout = \"10s\"\n", `c.toml:3:1: services.a.timeout: unknown key (timeout belongs in health = { ... } of [services.NAME] or ready = { ... } of [services.NAME])` + hint},
		{"[services.a]\ncommand = [\"x\"]\ncontainment = \"pgroup\"\n", `c.toml:3:1: services.a.containment: unknown key (containment belongs in [corral])` + hint},
		{"[services.a]\ncommand = [\"x\"]\nxyzzy = 1\n", `c.toml:3:1: services.a.xyzzy: unknown key` + hint},
		{"[corral]\ncontainmnet = \"auto\"\n", `c.toml:2:1: corral.containmnet: unknown key (did you mean "containment"?)` + hint},
		{"[services.a]\ncommand = [\"x\"]\nrestart = { polcy = \"always\" }\n", `c.toml:3:13: services.a.restart.polcy: unknown key (did you mean "policy"?)` + hint},
		{"[services.a]\ncommand = [\"x\"]\nafter = [\"dv\"]\n[services.db]\ncommand = [\"x\"]\n", `c.toml:3:1: services.a.after: unknown service "dv" (did you mean "db"?)`},
	} {
		_, err := Parse("c.toml", tc.src)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got  %v\n want %s", tc.src, err, tc.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"webui", "comfyui", "proxy", "db"}
	for _, tc := range []struct {
		word string
		want []string
	}{
		{"webiu", []string{"webui"}},   // a swap
		{"WebUI", []string{"webui"}},   // case
		{"comfy", []string{"comfyui"}}, // the start of one name
		{"proxi", []string{"proxy"}},
		{"dv", []string{"db"}},
		{"zzz", nil},               // nothing near: no hint
		{"web", []string{"webui"}}, // the start of one name (2 edits are too many for 3 letters)
		{"pro", []string{"proxy"}},
		{"ui", nil},    // too short to be the start of a name
		{"webui", nil}, // it is there
		{"x", nil},     // one letter matches nothing by chance
		{"dbx", []string{"db"}},
	} {
		if got := Suggest(tc.word, names); !slices.Equal(got, tc.want) {
			t.Errorf("Suggest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
	if got := DidYouMean("stat", []string{"start", "state"}); got != ` (did you mean "start" or "state"?)` {
		t.Errorf("two near misses: %q", got)
	}
	if got := DidYouMean("aa", []string{"ab", "ac", "ad"}); got != "" {
		t.Errorf("three near misses are no hint: %q", got)
	}
}

func TestUnknownProfileHint(t *testing.T) {
	f, err := Parse("c.toml", "[services.web]\ncommand = [\"x\"]\nprofiles = { guarded = [\"--medvram\"], lowvram = [\"--lowvram\"] }\n[services.b]\ncommand = [\"x\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Services["web"].CommandFor("gaurded")
	if want := `config: service web has no profile "gaurded" (did you mean "guarded"?) (profiles: guarded, lowvram)`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	_, err = f.Services["b"].CommandFor("guarded")
	if want := `config: service b has no profile "guarded" (it has no profiles; profiles = { NAME = ["--arg"] } adds one)`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestDigest(t *testing.T) {
	src := "[services.a]\ncommand = [\"x\"]\n"
	f, err := Parse("c.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	if f.Digest != Digest([]byte(src)) || len(f.Digest) != 64 {
		t.Errorf("digest %q", f.Digest)
	}
	g, _ := Parse("c.toml", src+"# changed\n")
	if g.Digest == f.Digest {
		t.Error("a changed file has the same digest")
	}
}
