package bootsvc

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Scope says whose service manager starts the daemon.
type Scope string

const (
	// User is the user's own manager: the daemon starts at the user's
	// login and runs as the user, in the user's session (systemd --user, a
	// launchd agent, a Task Scheduler logon task).
	User Scope = "user"
	// System is the machine's manager: the daemon starts at boot, as root
	// or RunAs (a systemd system unit, a launchd daemon, a Windows service).
	System Scope = "system"
)

// DefaultStopTimeout is the manager's wait for the daemon after its stop
// signal when Spec.StopTimeout is zero: corral's default shutdown_timeout
// (1m) and StopMargin.
const DefaultStopTimeout = time.Minute + StopMargin

// StopMargin is added to the daemon's shutdown_timeout to get the manager's
// stop timeout: the verified shutdown is bounded by shutdown_timeout, and
// then the daemon still answers its last API call (2 s), writes the
// journal and exits. The manager's kill must never cut that short, or the
// verification is lost and the manager, not corral, ends the trees.
const StopMargin = 30 * time.Second

// Spec is everything a definition depends on. The generators are pure
// functions of it.
type Spec struct {
	// Name tells apart several installed daemons (one per configuration):
	// unit corral-NAME.service, label sh.corral.NAME, task or service
	// corral-NAME. See DefaultName.
	Name  string
	Scope Scope
	// Executable is the corral binary the manager runs (absolute).
	Executable string
	// Config and StateDir are the daemon's -c and --state-dir (absolute).
	Config   string
	StateDir string
	// Containment is passed as --containment unless "" or "auto".
	Containment string
	// WorkingDir is the daemon's working directory (absolute): the
	// configuration's directory, where a relative path in it would point.
	WorkingDir string
	// Env is KEY=VALUE set for the daemon (and so for every service): a
	// manager's environment is not the login shell's (PATH above all).
	Env []string
	// RunAs is the user a System daemon runs as ("" for root). Refused
	// for User scope, whose daemon is always the user.
	RunAs string
	// StopTimeout is how long the manager waits for the daemon after its
	// stop signal before killing what is left (0: DefaultStopTimeout).
	StopTimeout time.Duration
	// Account and AccountSID name the Windows user whose logon starts a
	// User task (DOMAIN\user, S-1-5-21-...). Unused elsewhere.
	Account    string
	AccountSID string
}

// Label is the launchd label (reverse DNS of the project's domain).
func (s Spec) Label() string { return "sh.corral." + s.Name }

// UnitName is the systemd unit's name.
func (s Spec) UnitName() string { return "corral-" + s.Name + ".service" }

// TaskName is the Windows task's or service's name.
func (s Spec) TaskName() string { return "corral-" + s.Name }

// Args are the daemon's arguments after the executable.
func (s Spec) Args() []string {
	a := []string{"-c", s.Config, "--state-dir", s.StateDir}
	if s.Containment != "" && s.Containment != "auto" {
		a = append(a, "--containment", s.Containment)
	}
	return append(a, "daemon")
}

// ReloadArgs are the arguments of `corral reload` for this daemon.
func (s Spec) ReloadArgs() []string {
	return []string{"-c", s.Config, "--state-dir", s.StateDir, "reload"}
}

func (s Spec) stopTimeout() time.Duration {
	if s.StopTimeout <= 0 {
		return DefaultStopTimeout
	}
	return s.StopTimeout
}

// nameRE is what all four managers accept in a unit, label, task and
// service name without escaping.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// runAsRE is a portable user name (POSIX plus the trailing $ of machine
// accounts that useradd allows).
var runAsRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$`)

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// DefaultName derives a name from the configuration's path: its file's
// stem (sd.toml: "sd"), or for corral.toml its directory's name
// (~/stable-diffusion-webui/corral.toml: "stable-diffusion-webui"), with
// every run of other characters than letters, digits, '_', '.' and '-'
// turned into one '-'. A configuration path uses the running OS's
// separators.
func DefaultName(configPath string) string {
	stem := strings.TrimSuffix(filepath.Base(configPath), filepath.Ext(configPath))
	if strings.EqualFold(stem, "corral") {
		stem = filepath.Base(filepath.Dir(configPath))
	}
	var b strings.Builder
	dash := false
	for _, r := range stem {
		ok := r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-')
		if !ok {
			if !dash {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		b.WriteRune(r)
		dash = false
	}
	n := strings.Trim(b.String(), "-._")
	if len(n) > 64 {
		n = strings.TrimRight(n[:64], "-._")
	}
	if n == "" {
		return "default"
	}
	return n
}

// pathRules says what an absolute path is on the target OS: the
// generators are pure and run anywhere, so a Windows task is checked for
// C:\ paths on Linux too.
type pathRules struct {
	isAbs func(string) bool
	// extra reports a character that the target cannot carry in a path
	// ("" if none).
	extra func(string) string
}

var unixPaths = pathRules{isAbs: func(p string) bool { return path.IsAbs(p) && path.Clean(p) == p }}

var windowsPaths = pathRules{
	isAbs: func(p string) bool {
		// Cleaned as filepath.Clean does on Windows: no trailing
		// separator but the drive's root, no forward slashes.
		if strings.Contains(p, "/") || strings.HasSuffix(p, `\`) && len(p) != 3 {
			return false
		}
		if len(p) >= 3 && (p[0]|0x20 >= 'a' && p[0]|0x20 <= 'z') && p[1] == ':' && p[2] == '\\' {
			return true
		}
		return strings.HasPrefix(p, `\\`) && len(p) > 2
	},
	// Task Scheduler and the SCM expand %VAR% in what they run, with no
	// way to escape a literal percent sign.
	extra: func(p string) string {
		if strings.Contains(p, "%") {
			return "%"
		}
		return ""
	},
}

// check validates s for a target whose paths follow r.
func (s Spec) check(r pathRules) error {
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("bootsvc: name %q: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", s.Name)
	}
	switch s.Scope {
	case User:
		if s.RunAs != "" {
			return errors.New("bootsvc: a user service always runs as the user who installs it; RunAs needs the system scope")
		}
	case System:
		if s.RunAs != "" && !runAsRE.MatchString(s.RunAs) {
			return fmt.Errorf("bootsvc: user name %q is not a valid user name", s.RunAs)
		}
	default:
		return fmt.Errorf("bootsvc: unknown scope %q (want user or system)", s.Scope)
	}
	for _, f := range []struct{ what, p string }{
		{"the corral executable", s.Executable}, {"the configuration", s.Config},
		{"the state directory", s.StateDir}, {"the working directory", s.WorkingDir},
	} {
		if f.p == "" && f.what == "the working directory" {
			continue
		}
		if !r.isAbs(f.p) {
			// A manager starts the daemon in its own working directory:
			// a relative path would name another file there.
			return fmt.Errorf("bootsvc: %s %q is not an absolute, clean path", f.what, f.p)
		}
		if err := plainText(f.what, f.p); err != nil {
			return err
		}
		if r.extra != nil {
			if c := r.extra(f.p); c != "" {
				return fmt.Errorf("bootsvc: %s %q contains %q, which this service manager would expand and cannot escape", f.what, f.p, c)
			}
		}
		if strings.TrimSpace(f.p) != f.p {
			return fmt.Errorf("bootsvc: %s %q ends in white space, which unit and task files drop", f.what, f.p)
		}
	}
	if s.Containment != "" && !slices.Contains([]string{"auto", "cgroup", "pgroup"}, s.Containment) {
		return fmt.Errorf("bootsvc: unknown containment %q (want auto, cgroup or pgroup)", s.Containment)
	}
	for _, kv := range s.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !envKeyRE.MatchString(k) {
			return fmt.Errorf("bootsvc: environment entry %q is not KEY=VALUE with KEY of letters, digits and '_'", kv)
		}
		if err := plainText("environment entry", kv); err != nil {
			return err
		}
	}
	if err := plainText("account", s.Account); err != nil {
		return err
	}
	return nil
}

// plainText refuses what no definition can carry faithfully: invalid
// UTF-8 and control characters (a newline ends a unit's line; XML 1.0 has
// no way to write most control characters at all).
func plainText(what, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("bootsvc: %s %q is not valid UTF-8", what, v)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("bootsvc: %s %q contains a control character", what, v)
		}
	}
	return nil
}
