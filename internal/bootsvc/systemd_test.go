package bootsvc

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unitKeys parses a unit file into section -> key -> values (a key may
// repeat, as Environment= does).
func unitKeys(t *testing.T, unit string) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("unit line %q is not KEY=VALUE in a section", l)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// sdSplit reads a command line the way systemd's documentation says it
// does (systemd.service, "Command lines"; systemd.syntax, "Quoting"):
// words split at white space, double or single quotes, C escapes, then
// %% for a percent sign and, in arguments, $$ for a dollar sign. Written
// from the documentation, not from the quoting code it checks.
func sdSplit(t *testing.T, line string, dollars bool) []string {
	t.Helper()
	var words []string
	i := 0
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			break
		}
		var w strings.Builder
		var quote byte
		for i < len(line) {
			c := line[i]
			switch {
			case quote == 0 && (c == ' ' || c == '\t'):
				goto word
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			case quote != 0 && c == quote:
				quote = 0
			case c == '\\' && i+1 < len(line):
				i++
				switch e := line[i]; e {
				case 'n':
					w.WriteByte('\n')
				case 't':
					w.WriteByte('\t')
				case '\\', '"', '\'', ' ':
					w.WriteByte(e)
				default:
					t.Fatalf("escape \\%c in %q: the quoting writes none", e, line)
				}
			default:
				w.WriteByte(c)
			}
			i++
		}
		if quote != 0 {
			t.Fatalf("unterminated quote in %q", line)
		}
	word:
		words = append(words, w.String())
	}
	for n, w := range words {
		w = strings.ReplaceAll(w, "%%", "\x00")
		if strings.Contains(w, "%") {
			t.Fatalf("word %q has an unescaped specifier", words[n])
		}
		w = strings.ReplaceAll(w, "\x00", "%")
		if n > 0 && dollars {
			w = strings.ReplaceAll(w, "$$", "\x00")
			if strings.Contains(w, "$") {
				t.Fatalf("argument %q has an unescaped variable reference", words[n])
			}
			w = strings.ReplaceAll(w, "\x00", "$")
		}
		words[n] = w
	}
	return words
}

func TestSystemdUnit(t *testing.T) {
	for _, scope := range []Scope{User, System} {
		s := testSpec(scope)
		if scope == System {
			s.RunAs = "alice"
		}
		unit, err := SystemdUnit(s)
		if err != nil {
			t.Fatal(err)
		}
		k := unitKeys(t, unit)
		svc := k["Service"]
		for key, want := range map[string]string{
			"Type": "exec", "Delegate": "yes", "KillMode": "mixed", "Restart": "on-failure",
			"TimeoutStopSec": "90s", "RestartSec": "2s",
		} {
			if got := svc[key]; len(got) != 1 || got[0] != want {
				t.Errorf("%s: %s=%q, want %q", scope, key, got, want)
			}
		}
		if got := sdSplit(t, svc["ExecStart"][0], true); strings.Join(got, "\x00") != strings.Join(append([]string{s.Executable}, s.Args()...), "\x00") {
			t.Errorf("%s: ExecStart reads back as %q", scope, got)
		}
		if got := sdSplit(t, svc["ExecReload"][0], true); got[len(got)-1] != "reload" || got[2] != s.Config {
			t.Errorf("%s: ExecReload reads back as %q", scope, got)
		}
		// WorkingDirectory is taken literally, specifiers aside.
		if got := strings.ReplaceAll(svc["WorkingDirectory"][0], "%%", "%"); got != s.WorkingDir {
			t.Errorf("%s: WorkingDirectory=%q", scope, svc["WorkingDirectory"])
		}
		var env []string
		for _, e := range svc["Environment"] {
			// Environment= has no $ expansion; each quoted word is one
			// assignment.
			env = append(env, sdSplit(t, e, false)...)
		}
		if strings.Join(env, "\x00") != strings.Join(s.Env, "\x00") {
			t.Errorf("%s: Environment reads back as %q, want %q", scope, env, s.Env)
		}
		wantBy := map[Scope]string{User: "default.target", System: "multi-user.target"}[scope]
		if got := k["Install"]["WantedBy"]; len(got) != 1 || got[0] != wantBy {
			t.Errorf("%s: WantedBy=%q, want %s", scope, got, wantBy)
		}
		if got := svc["User"]; scope == System && (len(got) != 1 || got[0] != "alice") || scope == User && got != nil {
			t.Errorf("%s: User=%q", scope, got)
		}
	}
}

func TestSystemdStopTimeoutRoundsUp(t *testing.T) {
	s := testSpec(User)
	s.StopTimeout = 61500 * time.Millisecond
	unit, _ := SystemdUnit(s)
	if !strings.Contains(unit, "\nTimeoutStopSec=62s\n") {
		t.Errorf("61.5 s is not written as 62s:\n%s", unit)
	}
	s.StopTimeout = 0
	unit, _ = SystemdUnit(s)
	if !strings.Contains(unit, "\nTimeoutStopSec=90s\n") {
		t.Errorf("the default stop timeout is not 90s:\n%s", unit)
	}
}

// TestSystemdAnalyzeVerify has systemd itself read the units: user and
// system, with a corral binary and configuration at paths full of
// characters that need quoting. systemd-analyze verify resolves
// ExecStart's program and fails if it is not an executable file, so a
// quoting mistake in the path shows; any warning (an unknown key, a bad
// value) fails the test too.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd; it installs and verifies without systemd running)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	base := tempDir(t)
	// systemd refuses a program path with a quote or a backslash (see
	// SystemdUnit); the configuration's may have them.
	binDir := filepath.Join(base, "My Apps 100% $HOME <&> ü")
	dir := filepath.Join(base, `My Apps "sd" 100% $HOME \ x`)
	for _, d := range []string{binDir, dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(binDir, "corral binary")
	if err := os.Symlink(exe, bin); err != nil {
		t.Fatal(err)
	}
	runtimeDir := tempDir(t) // a user manager's $XDG_RUNTIME_DIR
	os.Chmod(runtimeDir, 0o700)
	for _, scope := range []Scope{User, System} {
		s := Spec{
			Name: "verify-" + string(scope), Scope: scope, Executable: bin,
			Config: filepath.Join(dir, "corral.toml"), StateDir: filepath.Join(dir, ".corral"), WorkingDir: dir,
			Env: []string{"PATH=" + os.Getenv("PATH"), `X=a "b" \c %d $e`}, Containment: "pgroup",
		}
		if scope == System {
			// Not nobody: verify warns that sharing it is unsafe.
			s.RunAs = "daemon"
		}
		unit, err := SystemdUnit(s)
		if err != nil {
			t.Fatal(err)
		}
		unitDir := tempDir(t)
		path := filepath.Join(unitDir, s.UnitName())
		if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"verify", path}
		if scope == User {
			args = []string{"--user", "verify", path}
		}
		cmd := exec.Command(sa, args...)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtimeDir, "SYSTEMD_LOG_LEVEL=info")
		out, err := cmd.CombinedOutput()
		t.Logf("%s: systemd-analyze %s: %v\n%s", scope, strings.Join(args, " "), err, out)
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("%s unit does not verify cleanly:\n%s", scope, unit)
		}
	}

	// The check is real: a path that does not resolve fails it.
	s := Spec{Name: "broken", Scope: System, Executable: filepath.Join(binDir, "no such corral"),
		Config: filepath.Join(dir, "corral.toml"), StateDir: filepath.Join(dir, ".corral")}
	unit, _ := SystemdUnit(s)
	path := filepath.Join(tempDir(t), s.UnitName())
	os.WriteFile(path, []byte(unit), 0o644)
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no such corral") {
		t.Errorf("systemd-analyze verify passed a unit whose program is missing: %v\n%s", err, out)
	}
}
