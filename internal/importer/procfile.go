package importer

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/corral-sh/corral/internal/config"
)

// The port conventions of foreman and overmind: the first process type
// gets the base port (5000, or PORT from .env), each next one 100 more.
const (
	procfilePortBase = 5000
	procfilePortStep = 100
)

var (
	// foreman's pattern; overmind's is the same with whitespace required
	// after the colon.
	procfileLineRE = regexp.MustCompile(`^([A-Za-z0-9_-]+):\s*(.+)$`)
	// overmind's nested Procfile: "-f backend/Procfile".
	procfileNestedRE = regexp.MustCompile(`^-f\s+(.+)$`)
)

type procEntry struct {
	name, command string
	pos           Pos
	nested        bool
}

// ImportProcfile reads a Procfile and the .env beside it. Each process type
// becomes a service running its command through /bin/sh -c in the
// Procfile's directory, with the .env as its env_file (read at each start)
// and PORT as foreman and overmind assign it. A variable corral's env_file
// would read otherwise than foreman (a $VAR it expands) is also written
// in env, which wins; a .env corral would refuse is copied into env.
func ImportProcfile(path string, o Options) (*Result, error) {
	r := &Result{Format: Procfile, outDir: o.outDir()}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("importer: %w", err)
	}
	root := filepath.Dir(abs) // absolute: dir is written relative to the output, not to here
	entries, err := readProcfile(r, path, map[string]bool{}, false)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, &ParseError{Pos{r.display(path), 0}, "no process types (lines of the form name: command)"}
	}

	envPath := filepath.Join(root, ".env")
	var env []dotenvVar
	envFile := ""               // env_file of every service
	copied := map[string]bool{} // variables written in env too
	base := procfilePortBase
	switch vars, err := parseDotenv(envPath, r.display(envPath), o.lookupEnv); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		var pe *ParseError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("importer: %w", err)
	default:
		r.Sources = append(r.Sources, r.display(envPath))
		env = vars
		for _, v := range vars {
			if v.Key == "PORT" {
				if n, err := strconv.Atoi(v.Value); err == nil && n > 0 && n < 65536 {
					base = n
				} else {
					r.find(Pos{r.display(envPath), v.Line}, Approx, "PORT="+v.Value, "not a port: each process type gets PORT from %d on, as foreman does", procfilePortBase)
				}
			}
		}
	}

	r.find(Pos{r.display(path), 0}, Approx, "one process exits",
		"foreman and overmind then stop every other process (overmind's --can-die and --auto-restart change that); "+
			"corral supervises each service on its own and restarts it on failure (restart = { policy = \"on-failure\" }, "+
			"the default): write policy = \"never\" for a process that should run once")
	r.find(Pos{r.display(path), 0}, Approx, "stop",
		"foreman sends TERM, overmind INT, and both kill after 5 seconds: written as stop = { signal = \"TERM\", grace = \"5s\" }; "+
			"corral signals and kills every process of the service, not only the shell")

	if env != nil {
		envFile, copied = r.dotenvFile(envPath, env)
	}
	for i, v := range env {
		pos := Pos{r.display(envPath), v.Line}
		last := !slices.ContainsFunc(env[i+1:], func(w dotenvVar) bool { return w.Key == v.Key })
		special := v.Key == "PORT" || v.Key == "CORRAL_SERVICE" || v.Key == "CORRAL_INSTANCE"
		switch {
		case len(v.FromEnv) > 0:
			r.find(pos, Approx, v.Key, "refers to %s, which the file does not set: written in env with the value it has in the environment of the import "+
				"(corral's env and env_file values are literal; services also inherit the daemon's environment)", strings.Join(v.FromEnv, ", "))
		case envFile == "" || !last || special || !copied[v.Key]:
		case len(v.Refs) > 0:
			r.find(pos, Approx, v.Key, "refers to %s: corral's env_file takes values as written (no $VAR expansion), so it is also written in env, "+
				"expanded at import: a change of %s in %s does not reach it", strings.Join(v.Refs, ", "), strings.Join(v.Refs, ", "), r.display(envPath))
		default:
			r.find(pos, Approx, v.Key, "corral's env_file reads this line otherwise than foreman and overmind (docs/configuration.md, env_file): "+
				"also written in env, with the value they read")
		}
		if v.Key == "CORRAL_SERVICE" || v.Key == "CORRAL_INSTANCE" {
			r.find(pos, Dropped, v.Key, "corral sets it for every process of a service itself")
		}
	}

	dir := r.dir(root)
	for i, e := range entries {
		s := &Service{Origin: e.pos, From: "process type " + e.name, Shell: e.command, Dir: dir, EnvFile: envFile,
			Stop: Stop{Signal: "TERM", Grace: "5s"}}
		if e.nested {
			s.Notes = append(s.Notes, "nested with -f (overmind); run from the main Procfile's directory, as overmind does")
		}
		for _, v := range env {
			if v.Key == "PORT" || v.Key == "CORRAL_SERVICE" || v.Key == "CORRAL_INSTANCE" || !copied[v.Key] {
				continue // PORT is assigned below, per process type; the others come from env_file
			}
			c := r.display(envPath) + ":" + strconv.Itoa(v.Line)
			if len(v.FromEnv) > 0 {
				c += "; " + strings.Join(v.FromEnv, ", ") + " taken from the environment of the import"
			}
			s.setEnv(v.Key, v.Value, c)
		}
		port := base + i*procfilePortStep
		s.setEnv("PORT", strconv.Itoa(port), fmt.Sprintf("foreman/overmind: %d + %d × process type %d", base, procfilePortStep, i))
		if e.name == "release" {
			// Heroku runs the release process type once per deploy, before
			// the new release starts; it is not a server.
			f := false
			s.Autostart = &f
			s.Restart.Policy = "never"
			s.find(e.pos, Approx, "process type release", "Heroku runs the release phase once per deploy; here it is a service that starts only when asked "+
				"(corral start release) and is not restarted")
		}
		r.addService(s, e.name)
	}
	return r, nil
}

// dotenvFile decides how the .env at path reaches the services. Where
// corral can read it as env_file, it is written as env_file (read at each
// start, as the variables of a file corral names, not of corral.toml),
// and copied lists the variables corral would read otherwise than foreman
// (a $VAR foreman expands and corral keeps as written), which are also
// written in env, which wins. Where corral would refuse the file (a
// CORRAL_ variable, a name with a dot), envFile is "" and every variable
// is copied into env, as read at import.
func (r *Result) dotenvFile(path string, vars []dotenvVar) (envFile string, copied map[string]bool) {
	disp := r.display(path)
	ours := map[string]string{}
	for _, v := range vars {
		ours[v.Key] = v.Value
	}
	all := func(pos Pos, why string) (string, map[string]bool) {
		every := map[string]bool{}
		for k := range ours {
			every[k] = true
		}
		r.find(pos, Approx, "env_file", "not written as env_file = %s: corral would refuse the file (%s); its variables are copied into the env of "+
			"every service as they are now, so a change to %s needs a new import (or fix the file and write env_file = %s)", quote(r.path(path)), why, disp, quote(r.path(path)))
		return "", every
	}
	kvs, err := config.ReadEnv([]config.EnvFile{{Path: path}})
	if err != nil {
		var fe *config.Error
		if errors.As(err, &fe) {
			return all(Pos{disp, fe.Line}, fe.Msg)
		}
		return all(Pos{disp, 0}, strings.TrimPrefix(strings.ReplaceAll(err.Error(), path, disp), "config: "))
	}
	theirs := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		theirs[k] = v
	}
	for k := range theirs {
		if _, ok := ours[k]; !ok {
			return all(Pos{disp, 0}, "it would set "+k+", which foreman does not read from it")
		}
	}
	copied = map[string]bool{}
	for k, v := range ours {
		if tv, ok := theirs[k]; !ok || tv != v {
			copied[k] = true
		}
	}
	envFile = r.path(path)
	r.find(Pos{disp, 0}, Approx, "env_file", "written as env_file = %s on every service: corral reads the file at every start of a service, so a changed "+
		"value takes effect at its next start (corral restart NAME), with no reload; foreman and overmind read it once, as they start", quote(envFile))
	return envFile, copied
}

// readProcfile reads path and the Procfiles it nests with -f (overmind).
func readProcfile(r *Result, path string, seen map[string]bool, nested bool) ([]procEntry, error) {
	abs, _ := filepath.Abs(path)
	disp := r.display(path)
	if seen[abs] {
		return nil, &ParseError{Pos{disp, 0}, "includes itself through -f"}
	}
	seen[abs] = true
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("importer: %w", err)
	}
	defer f.Close()
	r.Sources = append(r.Sources, disp)
	var out []procEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		case procfileNestedRE.MatchString(trimmed):
			rel := procfileNestedRE.FindStringSubmatch(trimmed)[1]
			if filepath.IsAbs(rel) {
				return nil, &ParseError{Pos{disp, n}, "a nested Procfile must be named relative to this one (as overmind requires)"}
			}
			sub, err := readProcfile(r, filepath.Join(filepath.Dir(path), rel), seen, true)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		case procfileLineRE.MatchString(line):
			m := procfileLineRE.FindStringSubmatch(line)
			out = append(out, procEntry{name: m[1], command: strings.TrimSpace(m[2]), pos: Pos{disp, n}, nested: nested})
		default:
			r.find(Pos{disp, n}, Dropped, strconv.Quote(trimmed), "not a process type (name: command) nor a comment; foreman and overmind skip it too")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("importer: %s: %w", disp, err)
	}
	return out, nil
}
