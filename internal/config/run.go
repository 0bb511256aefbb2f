package config

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
)

// How a service's first process is set up beyond its command: who it runs
// as, the env files read at each start, its umask and nice value; and the
// list form of ready.

// RunAs is who a service's tree runs as (user = / group =, Unix).
type RunAs struct {
	User  string // the user's name
	Group string // the primary group's name (the user's own unless group = is given)
	UID   uint32
	GID   uint32
	// Groups are the supplementary groups: the user's groups, as
	// initgroups(3) gives them, with GID.
	Groups []uint32
	Home   string
	Shell  string
	// Switch is false when it is the daemon's own user and group: the
	// credentials stay, only HOME, USER, LOGNAME and SHELL are set.
	Switch bool
}

// Env returns the variables a login as this user sets (as runuser does:
// HOME, SHELL, USER, LOGNAME), to be layered below the service's own.
func (r *RunAs) Env() []string {
	if r == nil {
		return nil
	}
	shell := r.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	return []string{"HOME=" + r.Home, "SHELL=" + shell, "USER=" + r.User, "LOGNAME=" + r.User}
}

// runKeys validates user, group, env_file, umask and nice into s.
func (p *parser) runKeys(key func(...string) []string, s *Service, r rawService, base string, _ presetSpec) {
	if r.User != "" || r.Group != "" {
		if r.User == "" {
			p.errAt(key("group"), "group needs user: write user = \"root\" as well to run as root with group %s, or the user the service runs as", r.Group)
		} else if ra, which, err := lookupRunAs(r.User, r.Group); err != nil {
			p.errAt(key(which), "%v", err)
		} else {
			s.RunAs = ra
		}
	}

	for _, spec := range envFileSpecs(r.EnvFile) {
		k := append(key("env_file"), spec.key...)
		switch {
		case !spec.hasPath:
			p.errAt(k, "a table in env_file needs path: { path = \".env.local\", optional = true }")
			continue
		case spec.path == "":
			p.errAt(k, "the path is empty")
			continue
		case !p.noNUL(k, "a path", spec.path):
			continue
		}
		ef := EnvFile{Path: absPath(spec.path, base), Optional: spec.optional}
		s.EnvFiles = append(s.EnvFiles, ef)
		// Read now too, so that a file corral could not start the service
		// with is refused at load (and by reload, changing nothing); the
		// values are not kept: they are read again at each start.
		if _, err := readEnvFile(ef); err != nil {
			var fe *Error
			switch {
			case errors.As(err, &fe):
				fe.Msg += " (env_file of services." + tomlKey(s.Name) + ")"
				p.extErrs = append(p.extErrs, fe)
			case errors.Is(err, errEnvMissing):
				p.errAt(k, "%s does not exist; create it, or write { path = %q, optional = true } to start without it", ef.Path, spec.path)
			default:
				p.errAt(k, "%s", strings.TrimPrefix(err.Error(), "config: env_file "))
			}
		}
	}

	if r.Umask != "" {
		v, err := strconv.ParseUint(r.Umask, 8, 32)
		switch {
		case err != nil || len(r.Umask) > 4 || v > 0o777:
			p.errAt(key("umask"), "%q is not a umask: write up to 4 octal digits as the umask command takes them (\"027\": no write for the group, nothing for others)", r.Umask)
		case umaskRefused != "":
			p.errAt(key("umask"), "%s", umaskRefused)
		default:
			u := uint32(v)
			s.Umask = &u
		}
	}
	if r.Nice != nil {
		n := *r.Nice
		if n < -20 || n > 19 {
			p.errAt(key("nice"), "%d is outside -20..19 (19 is the lowest priority, -20 the highest)", n)
		} else if err := checkNice(n); err != nil {
			p.errAt(key("nice"), "%v", err)
		} else {
			s.Nice = &n
		}
	}
}

type envFileSpec struct {
	path     string
	optional bool
	hasPath  bool
	key      []string // below env_file
}

// envFileSpecs lists an env_file value's files: a path, a table, or a
// list of either (the schema walk checked the types).
func envFileSpecs(v any) []envFileSpec {
	one := func(e any, key []string) (envFileSpec, bool) {
		switch x := e.(type) {
		case string:
			return envFileSpec{path: x, hasPath: true, key: key}, true
		case map[string]any:
			path, has := x["path"].(string)
			opt, _ := x["optional"].(bool)
			if has {
				key = append(key, "path")
			}
			return envFileSpec{path: path, optional: opt, hasPath: has, key: key}, true
		}
		return envFileSpec{}, false
	}
	if list, ok := asList(v); ok {
		var out []envFileSpec
		for i, e := range list {
			if s, ok := one(e, []string{"#" + strconv.Itoa(i)}); ok {
				out = append(out, s)
			}
		}
		return out
	}
	if s, ok := one(v, nil); ok {
		return []envFileSpec{s}
	}
	return nil
}

// readyProbes validates ready: one table, or a list of tables that must
// all pass (each with its own timeout and interval).
func (p *parser) readyProbes(key []string, v any) Probe {
	if t, ok := v.(map[string]any); ok {
		return p.probe(key, rawProbeOf(t), true)
	}
	list, _ := asList(v)
	var all []Probe
	for i, e := range list {
		t, _ := e.(map[string]any)
		pr := p.probe(append(slices.Clone(key), "#"+strconv.Itoa(i)), rawProbeOf(t), true)
		if pr.Timeout == 0 {
			pr.Timeout = 60 * time.Second
		}
		if pr.Interval == 0 {
			pr.Interval = 100 * time.Millisecond
		}
		all = append(all, pr)
	}
	if len(all) == 1 {
		return all[0]
	}
	out := Probe{All: all}
	for _, pr := range all {
		out.Timeout = max(out.Timeout, pr.Timeout)
		if out.Interval == 0 || pr.Interval < out.Interval {
			out.Interval = pr.Interval
		}
	}
	return out
}

// rawProbeOf reads a probe table decoded as any (the schema walk checked
// its keys and types).
func rawProbeOf(t map[string]any) rawProbe {
	str := func(k string) string { s, _ := t[k].(string); return s }
	r := rawProbe{HTTP: str("http"), Body: str("body"), TCP: str("tcp"), Log: str("log"), Timeout: str("timeout"), Interval: str("interval")}
	if l, ok := t["exec"].([]any); ok {
		for _, e := range l {
			s, _ := e.(string)
			r.Exec = append(r.Exec, s)
		}
	}
	if n, ok := t["failures"].(int64); ok {
		i := int(n)
		r.Failures = &i
	}
	return r
}
