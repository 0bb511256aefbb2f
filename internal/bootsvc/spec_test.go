package bootsvc

import (
	"strings"
	"testing"
	"time"
)

// trickyDir holds what a path may hold and a definition must carry
// through: spaces, quotes, a backslash, unit specifiers, shell and XML
// metacharacters, and non-ASCII.
const trickyDir = `/tmp/My Apps/sd "web" 100% $HOME \ <&'> ü`

func testSpec(scope Scope) Spec {
	return Spec{
		Name:        "webui",
		Scope:       scope,
		Executable:  "/opt/corral/bin/corral",
		Config:      trickyDir + "/corral.toml",
		StateDir:    trickyDir + "/.corral",
		WorkingDir:  trickyDir,
		Env:         []string{"PATH=/usr/local/bin:/usr/bin:/bin", `WEIRD=a "b" \c %d $e`},
		StopTimeout: 90 * time.Second,
	}
}

func TestDefaultName(t *testing.T) {
	for in, want := range map[string]string{
		"/home/a/stable-diffusion-webui/corral.toml": "stable-diffusion-webui",
		"/home/a/apps/sd.toml":                       "sd",
		"/home/a/My Apps/corral.toml":                "My-Apps",
		"/home/a/ünï cödé/corral.toml":               "n-c-d",
		"/corral.toml":                               "default",
		"/x/" + strings.Repeat("a", 80) + ".toml":    strings.Repeat("a", 64),
	} {
		if got := DefaultName(in); got != want {
			t.Errorf("DefaultName(%q) = %q, want %q", in, got, want)
		}
		if !nameRE.MatchString(DefaultName(in)) {
			t.Errorf("DefaultName(%q) = %q is not a valid name", in, DefaultName(in))
		}
	}
}

func TestSpecRefusals(t *testing.T) {
	for _, tc := range []struct {
		what string
		edit func(*Spec)
		want string
	}{
		{"relative config", func(s *Spec) { s.Config = "corral.toml" }, "not an absolute"},
		{"relative state dir", func(s *Spec) { s.StateDir = "./.corral" }, "not an absolute"},
		{"unclean path", func(s *Spec) { s.StateDir = "/a/../b" }, "not an absolute, clean"},
		{"newline in path", func(s *Spec) { s.Config = "/a\nb.toml" }, "control character"},
		{"trailing space", func(s *Spec) { s.WorkingDir = "/a " }, "white space"},
		{"bad name", func(s *Spec) { s.Name = "a/b" }, "name"},
		{"empty name", func(s *Spec) { s.Name = "" }, "name"},
		{"run as in user scope", func(s *Spec) { s.RunAs = "alice" }, "system scope"},
		{"bad env", func(s *Spec) { s.Env = []string{"1X=y"} }, "environment"},
		{"bad containment", func(s *Spec) { s.Containment = "jail" }, "containment"},
		{"bad scope", func(s *Spec) { s.Scope = "global" }, "scope"},
		{"quote in the program's path", func(s *Spec) { s.Executable = `/opt/"x"/corral` }, "quote or a backslash"},
	} {
		s := testSpec(User)
		tc.edit(&s)
		_, err := SystemdUnit(s)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "bootsvc: ") {
			t.Errorf("%s: got %v, want an error saying %q", tc.what, err, tc.want)
		}
	}
	s := testSpec(System)
	s.RunAs = "bad user"
	if _, err := SystemdUnit(s); err == nil {
		t.Error("a user name with a space was accepted")
	}
}

func TestArgs(t *testing.T) {
	s := testSpec(User)
	want := []string{"-c", s.Config, "--state-dir", s.StateDir, "daemon"}
	if got := s.Args(); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("Args = %q, want %q", got, want)
	}
	s.Containment = "pgroup"
	if got := s.Args(); got[len(got)-3] != "--containment" || got[len(got)-2] != "pgroup" {
		t.Errorf("Args with containment = %q", got)
	}
}
