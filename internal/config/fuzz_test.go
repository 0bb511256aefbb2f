package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, and returns either a configuration or an
// error, never both; every positioned error has a position.
func FuzzParse(f *testing.F) {
	if src, err := os.ReadFile("../../examples/corral.toml"); err == nil {
		f.Add(string(src))
	}
	for _, s := range []string{
		full,
		"",
		"[corral]\nleak_sweep = \"0s\"\n",
		"[corral]\nwatch_interval = \"250ms\"\nlimits = { memory = \"2GiB\", processes = 64, fork_rate = 50.5 }\non_limit = \"stop\"\n",
		svc("health = { tcp = \"127.0.0.1:1\", interval = \"1ns\", failures = 3 }\n"),
		svc("restart = { backoff = \"0s\", window = \"0s\", burst = 1000000000, jitter = nan }\n"),
		svc("limits = { memory = \"99999999999999999999TiB\" }\n"),
		svc("dir = \"nope\"\nenv = { A = \"x\\u0000\" }\nprofiles = { p = [\"a\"] }\n"),
		"[services.\"a.b\"]\nshell = \"echo hi\"\nready = { http = \"http://127.0.0.1:1/\", body = \"ok\", log = \"up\" }\nstop = { hook = \"POST http://127.0.0.1:1/q\", signal = \"INT\" }\n",
		"[services.a]\ncommand = [\"x\"]\nafter = [\"b\"]\n[services.b]\ncommand = [\"x\"]\nafter = [\"a\"]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := Parse("c.toml", src)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned %v and %v", cfg, err)
		}
		if err == nil {
			return
		}
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			var ce *Error
			// An error of another file (an env_file's line, an included
			// file's) names that file.
			if errors.As(e, &ce) && (ce.Line < 1 || ce.Col < 1 || !strings.HasPrefix(ce.Error(), ce.File+":") || ce.File == "") {
				t.Fatalf("error without a position: %#v", ce)
			}
		}
	})
}
