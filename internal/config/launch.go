package config

import (
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
)

// Launch options: what a start (an app's launcher, through the API) gives
// one instance on top of the configuration and its profile. They are
// checked here, where the command is put together, so that a request the
// configuration could never run is refused before anything changes.

// Bounds of a start's own arguments and environment: a launcher's options,
// not a data channel.
const (
	maxLaunchArgs  = 1024
	maxLaunchVars  = 1024
	maxLaunchBytes = 256 << 10
)

// CommandWith returns the argv for an instance started with profile ("" for
// none) and args, this instance's own arguments, appended after the
// command and the profile's arguments. A `shell =` command gets them
// quoted into its command line: on unix in single quotes, which /bin/sh
// takes literally whatever they hold; on Windows in double quotes for
// cmd.exe, which expands %VAR% and !VAR! even inside quotes and has no way
// to escape a double quote there, so an argument with %, !, " or a line
// break is refused for a `shell =` service or a .bat/.cmd program, saying
// to pass it in env or to use command = [...] with a program that is not
// a batch file. An argument with a NUL byte is refused everywhere.
func (s *Service) CommandWith(profile string, args []string) ([]string, error) {
	return s.commandWith(runtime.GOOS, profile, args)
}

func (s *Service) commandWith(goos, profile string, args []string) ([]string, error) {
	argv, err := s.CommandFor(profile)
	if err != nil || len(args) == 0 {
		return argv, err
	}
	if err := checkArgs(args); err != nil {
		return nil, err
	}
	viaCmd := goos == "windows" && (s.Shell || len(s.Argv) > 0 && RunsViaCmd(s.Argv[0], goos == runtime.GOOS))
	if viaCmd {
		for i, a := range args {
			if strings.ContainsAny(a, "%!\"\r\n") {
				what := "its command runs through cmd.exe (cmd.exe itself, or a .bat/.cmd file)"
				if s.Shell {
					what = "it is a shell = command line, which cmd.exe runs"
				}
				return nil, fmt.Errorf("config: argument %d (%q) has %s; %s, and cmd.exe expands %%VAR%% and !VAR! even inside quotes and cannot quote a \" there: pass the value in env instead, or define the service with command = [...] naming a program that is not a batch file",
					i+1, a, badCmdChars(a), what)
			}
		}
	}
	if !s.Shell {
		return append(argv, args...), nil
	}
	line := argv[len(argv)-1]
	if !viaCmd {
		if why := shellTail(line); why != "" {
			return nil, fmt.Errorf("config: service %s: its shell line %s, so arguments appended to it would not reach the program: write the line so that it ends with the program's own arguments, or define the service with command = [...]", s.Name, why)
		}
	}
	for _, a := range args {
		if viaCmd {
			line += " " + cmdArg(a)
		} else {
			line += " " + shArg(a)
		}
	}
	argv[len(argv)-1] = line
	return argv, nil
}

// shellTail says why words appended to a /bin/sh line would not be the
// last command's arguments ("" when they would be): after a line break
// they go to the last line only, after a comment they are part of it, and
// after a trailing &, ;, | or && they become a command of their own.
func shellTail(line string) string {
	t := strings.TrimRight(line, " \t")
	switch {
	case strings.ContainsAny(t, "\r\n"):
		return "has more than one line"
	case commentRE.MatchString(t):
		return "has a # comment"
	case strings.HasSuffix(t, "&") || strings.HasSuffix(t, ";") || strings.HasSuffix(t, "|"):
		return fmt.Sprintf("ends with %q", t[len(t)-1:])
	}
	return ""
}

// commentRE finds a # that starts a word: where /bin/sh starts a comment.
var commentRE = regexp.MustCompile(`(^|[ \t])#`)

func checkArgs(args []string) error {
	if len(args) > maxLaunchArgs {
		return fmt.Errorf("config: %d arguments, more than the %d a start may give", len(args), maxLaunchArgs)
	}
	n := 0
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("config: argument %d has a NUL byte, which no program can receive", i+1)
		}
		n += len(a)
	}
	if n > maxLaunchBytes {
		return fmt.Errorf("config: the arguments are %d bytes, more than the %d a start may give", n, maxLaunchBytes)
	}
	return nil
}

func badCmdChars(a string) string {
	var found []string
	for _, c := range []struct{ ch, name string }{{"%", "%"}, {"!", "!"}, {`"`, `"`}, {"\r", "a carriage return"}, {"\n", "a line break"}} {
		if strings.Contains(a, c.ch) {
			found = append(found, c.name)
		}
	}
	return strings.Join(found, " and ")
}

// shArg quotes a word for /bin/sh: in single quotes nothing is special,
// and a single quote itself is closed, escaped and reopened.
func shArg(a string) string {
	if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,+@") == "" {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// cmdArg quotes a word for a cmd.exe command line (one without %, !, " or
// line breaks: commandWith refused those). Inside double quotes & | < > ( )
// ^ and spaces are literal. A run of backslashes before the closing quote
// is doubled, as the C runtime's argument parser (python, node, most
// programs) needs it to read them as backslashes rather than an escaped
// quote.
func cmdArg(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t&|<>()^,;=") {
		return a
	}
	trail := len(a) - len(strings.TrimRight(a, `\`))
	return `"` + a + strings.Repeat(`\`, trail) + `"`
}

func isBatch(path string) bool {
	p := strings.ToLower(path)
	return strings.HasSuffix(p, ".bat") || strings.HasSuffix(p, ".cmd")
}

// RunsViaCmd reports whether Windows runs program through cmd.exe, which
// parses its command line again (& | < > ^ split it, %VAR% expands): a
// .bat or .cmd file, cmd.exe itself (command = ["cmd.exe", "/c",
// "webui-user.bat"], the incident's wrapper), or, with resolve, a name
// without extension that the search path (PATHEXT) finds as a batch file
// ("C:\sd\webui-user"). resolve is only meaningful on Windows itself.
func RunsViaCmd(program string, resolve bool) bool {
	base := strings.ToLower(program)
	if i := strings.LastIndexAny(base, `\/`); i >= 0 {
		base = base[i+1:]
	}
	if base == "cmd" || base == "cmd.exe" || isBatch(program) {
		return true
	}
	if resolve {
		if p, err := exec.LookPath(program); err == nil && isBatch(p) {
			return true
		}
	}
	return false
}

// LaunchEnv checks the environment a start gives one instance, layered
// over the service's env, and returns it as KEY=VALUE sorted by name. The
// names corral sets itself (CORRAL_SERVICE, CORRAL_INSTANCE, CORRAL_STATE)
// are refused, as in the configuration.
func LaunchEnv(env map[string]string) ([]string, error) {
	if len(env) > maxLaunchVars {
		return nil, fmt.Errorf("config: %d environment variables, more than the %d a start may give", len(env), maxLaunchVars)
	}
	keys := make([]string, 0, len(env))
	n := 0
	for k, v := range env {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			return nil, fmt.Errorf("config: environment variable name %q is invalid (not empty, no = or NUL)", k)
		case k == "CORRAL_SERVICE" || k == "CORRAL_INSTANCE" || k == "CORRAL_STATE":
			return nil, fmt.Errorf("config: environment variable %s is set by corral for every process of the service; a start cannot set it", k)
		case strings.IndexByte(v, 0) >= 0:
			return nil, fmt.Errorf("config: the value of environment variable %s has a NUL byte, which no program can receive", k)
		}
		keys = append(keys, k)
		n += len(k) + len(v)
	}
	if n > maxLaunchBytes {
		return nil, fmt.Errorf("config: the environment is %d bytes, more than the %d a start may give", n, maxLaunchBytes)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + env[k]
	}
	return out, nil
}

// WithEnv returns a copy of s whose env has extra (KEY=VALUE) layered over
// it: a name in extra replaces the service's value (on Windows ignoring
// case, as its environment does). For what reads the env of an instance
// (HookFor's COMMANDLINE_ARGS).
func (s *Service) WithEnv(extra []string) *Service {
	if len(extra) == 0 {
		return s
	}
	c := *s
	name := func(kv string) string {
		k, _, _ := strings.Cut(kv, "=")
		if runtime.GOOS == "windows" {
			return strings.ToUpper(k)
		}
		return k
	}
	over := map[string]bool{}
	for _, kv := range extra {
		over[name(kv)] = true
	}
	c.Env = slices.DeleteFunc(slices.Clone(s.Env), func(kv string) bool { return over[name(kv)] })
	c.Env = append(c.Env, extra...)
	return &c
}
