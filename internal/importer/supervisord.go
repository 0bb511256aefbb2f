package importer

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ImportSupervisord reads a supervisord.conf and the files its [include]
// names. Each [program:x] (each of its numprocs processes) becomes a
// service; its command is split into an argv as supervisord splits it (no
// shell), and every %(...)s expansion is done as supervisord does it at
// start, %(ENV_X)s from the environment of the import.
func ImportSupervisord(path string, o Options) (*Result, error) {
	r := &Result{Format: Supervisord, outDir: o.outDir()}
	sv := &svImport{r: r, o: &o, env: map[string]string{}}
	main, err := sv.read(path)
	if err != nil {
		return nil, err
	}
	ini := main
	if inc := main.section("include"); inc != nil {
		if err := sv.include(ini, inc, path); err != nil {
			return nil, err
		}
	}
	if err := sv.daemon(ini); err != nil {
		return nil, err
	}
	if err := sv.programs(ini); err != nil {
		return nil, err
	}
	if len(r.Services) == 0 {
		return nil, &ParseError{Pos{r.display(path), 0}, "no [program:NAME] sections: nothing to import"}
	}
	sv.priorities()
	sv.groupsOut()
	// One note for every restart table, ahead of the file's other notes.
	note := Finding{Pos: Pos{r.display(path), 0}, Setting: "restarts", Kind: Approx, Note: "supervisord retries a program that exits within startsecs " +
		"up to startretries times (waiting 1s, 2s, 3s, ...), then leaves it FATAL until it is started by hand, and restarts a program that ran longer at once, " +
		"without limit. Each restart table is the nearest corral policy: backoff 1s, doubled by each quick failure (up to 30s); stable_after = startsecs; " +
		"burst = startretries + 1 starts within a window that holds those retries, after which corral fails the service, and re-arms it by itself once " +
		"those starts have left the window"}
	r.Findings = append([]Finding{note}, r.Findings...)
	return r, nil
}

// iniFile is what Python's RawConfigParser (strict=False, as supervisord
// configures it) makes of one or more files: sections in order of first
// appearance, a later duplicate merged into the first, a later key
// replacing an earlier one.
type iniFile struct {
	sections []*iniSection
}

type iniSection struct {
	name string
	pos  Pos
	keys []*iniKey
}

type iniKey struct {
	name, value string
	pos         Pos
	here        string // directory of the file the value came from: %(here)s
}

func (f *iniFile) section(name string) *iniSection {
	for _, s := range f.sections {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (s *iniSection) get(name string) *iniKey {
	for _, k := range s.keys {
		if k.name == name {
			return k
		}
	}
	return nil
}

var (
	iniSectionRE = regexp.MustCompile(`^\[(.+)\]`)
	iniOptionRE  = regexp.MustCompile(`^(.*?)\s*[=:]\s*(.*)$`)
)

// parseINI reads one file into f, as RawConfigParser.read does: # and ;
// start a comment on their own line, or after whitespace within a line;
// lines indented deeper than their key continue its value.
func parseINI(f *iniFile, path, display string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("importer: %w", err)
	}
	abs, _ := filepath.Abs(path)
	here := filepath.Dir(abs)
	var cur *iniSection
	var curKey *iniKey
	keyIndent := 0
	blanks := 0 // blank lines inside a value, kept if more of it follows
	for i, raw := range strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n") {
		n := i + 1
		line := raw[:inlineComment(raw)]
		if t := strings.TrimSpace(raw); strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
			line = ""
		}
		value := strings.TrimSpace(line)
		if value == "" {
			if curKey != nil && strings.TrimSpace(raw) == "" {
				blanks++
			}
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		if curKey != nil && indent > keyIndent {
			if curKey.value != "" || blanks > 0 {
				curKey.value += strings.Repeat("\n", blanks+1)
			}
			curKey.value += value
			blanks = 0
			continue
		}
		curKey, blanks, keyIndent = nil, 0, indent
		if m := iniSectionRE.FindStringSubmatch(value); m != nil {
			name := m[1]
			cur = f.section(name)
			if cur == nil {
				cur = &iniSection{name: name, pos: Pos{display, n}}
				f.sections = append(f.sections, cur)
			}
			continue
		}
		if cur == nil {
			return &ParseError{Pos{display, n}, "a setting before the first [section] header"}
		}
		m := iniOptionRE.FindStringSubmatch(value)
		if m == nil || m[1] == "" {
			return &ParseError{Pos{display, n}, fmt.Sprintf("not a section header nor key = value: %q", value)}
		}
		k := &iniKey{name: strings.ToLower(strings.TrimSpace(m[1])), value: m[2], pos: Pos{display, n}, here: here}
		if old := cur.get(k.name); old != nil {
			*old = *k
			curKey = old
		} else {
			cur.keys = append(cur.keys, k)
			curKey = k
		}
	}
	return nil
}

// inlineComment returns where an inline comment starts in line (len(line)
// for none): a ; or # at the start of the line or after whitespace, as
// supervisord's inline_comment_prefixes make Python's configparser read it.
// So `command=sh -c "a ; b"` ends at "a": supervisord reads it so too.
func inlineComment(line string) int {
	for i := 0; i < len(line); i++ {
		if (line[i] == ';' || line[i] == '#') && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return i
		}
	}
	return len(line)
}

// svImport holds the state of one supervisord import.
type svImport struct {
	r       *Result
	o       *Options
	env     map[string]string // [supervisord] environment, as ENV_ expansions and defaults
	envVars []EnvVar
	dir     string // [supervisord] directory
	// user and umask are [supervisord] user and umask, the defaults of
	// every program ("" for none).
	user, umask string
	// groups maps a program to its [group:x] and that group's priority;
	// groupDefs are the [group:x] sections in order.
	groups    map[string]svGroup
	groupDefs []svGroupDef
	progs     []svProgram
}

type svGroupDef struct {
	name     string
	pos      Pos
	programs []string
}

type svGroup struct {
	name     string
	priority int
}

type svProgram struct {
	prog      string // the [program:x] it is a process of
	svc       *Service
	group     int // the group's priority (the program's own when ungrouped)
	priority  int
	autostart bool
	explicit  *iniKey // priority= as written, nil for the default
}

func (sv *svImport) read(path string) (*iniFile, error) {
	f := &iniFile{}
	disp := sv.r.display(path)
	if err := parseINI(f, path, disp); err != nil {
		return nil, err
	}
	sv.r.Sources = append(sv.r.Sources, disp)
	return f, nil
}

// include reads [include] files = ...: whitespace-separated globs relative
// to the main file, each match in sorted order, as supervisord does. An
// [include] in an included file is not followed (supervisord reads only
// the main file's).
func (sv *svImport) include(ini *iniFile, inc *iniSection, path string) error {
	fk := inc.get("files")
	if fk == nil {
		return &ParseError{inc.pos, "[include] has no files = setting (supervisord refuses it too)"}
	}
	// A copy: an [include] in an included file replaces the key in place.
	files := &iniKey{}
	*files = *fk
	vars := sv.vars(files.here, nil)
	val, err := sv.expand(files, vars, nil)
	if err != nil {
		return err
	}
	absMain, _ := filepath.Abs(path)
	base := filepath.Dir(absMain)
	for _, pat := range strings.Fields(val) {
		if !filepath.IsAbs(pat) {
			pat = filepath.Join(base, pat)
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			return &ParseError{files.pos, fmt.Sprintf("bad pattern %q: %v", pat, err)}
		}
		if len(matches) == 0 {
			sv.r.find(files.pos, Dropped, "files = "+val, "no file matches %s (supervisord only warns about it)", sv.r.display(pat))
			continue
		}
		sort.Strings(matches)
		for _, m := range matches {
			disp := sv.r.display(m)
			if err := parseINI(ini, m, disp); err != nil {
				return err
			}
			sv.r.Sources = append(sv.r.Sources, disp)
			for _, k := range ini.section("include").keys {
				if k.pos.File == disp {
					sv.r.find(k.pos, Dropped, "[include] "+k.name+" = "+k.value, "supervisord reads [include] only in its main file: move it there to read these files")
				}
			}
		}
	}
	return nil
}

// svDaemonKeys says, for each [supervisord] key, why it does not become a
// corral setting.
var svDaemonKeys = map[string]struct {
	kind Kind
	note string
}{
	"logfile":          {Moot, "corral's daemon writes its log to daemon.log in its state directory (.corral/ beside corral.toml)"},
	"logfile_maxbytes": {Moot, "corral's daemon log is its own; corral events shows what happened to every service"},
	"logfile_backups":  {Moot, "corral's daemon log is its own; corral events shows what happened to every service"},
	"loglevel":         {Moot, "corral's daemon log is its own; corral events shows what happened to every service"},
	"pidfile":          {Moot, "corral keeps its lock and socket in its state directory; corral status finds the daemon"},
	"nodaemon":         {Moot, "corral daemon runs in the foreground, corral up starts it in the background"},
	"silent":           {Moot, "corral daemon runs in the foreground, corral up starts it in the background"},
	"identifier":       {Moot, "a daemon is named by its state directory"},
	"childlogdir":      {Moot, "corral keeps every service's output in .corral/logs/NAME.log (corral logs NAME)"},
	"nocleanup":        {Moot, "corral rotates its logs itself"},
	"strip_ansi":       {Dropped, "corral keeps output as the program wrote it"},
	"minfds":           {Dropped, "raise the limit of corral's own process (ulimit -n before corral daemon, LimitNOFILE= in a systemd unit): services inherit it"},
	"minprocs":         {Dropped, "raise the limit of corral's own process (ulimit -u before corral daemon): services inherit it; limits.processes bounds a service's tree"},
}

// daemon reads [supervisord] (whose environment every program inherits)
// and reports the sections that have no corral counterpart.
func (sv *svImport) daemon(ini *iniFile) error {
	sv.groups = map[string]svGroup{}
	for _, sec := range ini.sections {
		typ, name, _ := strings.Cut(sec.name, ":")
		switch typ {
		case "supervisord":
			for _, k := range sec.keys {
				switch k.name {
				case "environment":
					vars := sv.vars(k.here, nil)
					var used []string
					val, err := sv.expand(k, vars, &used)
					if err != nil {
						return err
					}
					pairs, err := envPairs(val)
					if err != nil {
						return &ParseError{k.pos, "[supervisord] environment: " + err.Error()}
					}
					for _, kv := range pairs {
						sv.env[kv[0]] = kv[1]
						if passthrough(k.value, kv[0]) {
							sv.r.find(k.pos, Moot, "[supervisord] environment "+kv[0]+"=%(ENV_"+kv[0]+")s",
								"services inherit corral's environment: start corral with %s set, and it reaches them as it did from supervisord", kv[0])
							used = slices.DeleteFunc(used, func(u string) bool { return u == "%(ENV_"+kv[0]+")s" })
							continue
						}
						if kv[0] == "CORRAL_SERVICE" || kv[0] == "CORRAL_INSTANCE" {
							sv.r.find(k.pos, Dropped, "[supervisord] environment "+kv[0], "corral sets it for every process of a service itself")
							continue
						}
						sv.envVars = append(sv.envVars, EnvVar{Key: kv[0], Value: kv[1], Comment: k.pos.String() + " ([supervisord] environment)"})
					}
					if len(used) > 0 {
						sv.r.find(k.pos, Approx, "[supervisord] environment = "+k.value, "%s expanded at import with the value here (supervisord expands it when it starts; "+
							"corral's values are literal): import again where corral runs if it differs", strings.Join(used, ", "))
					}
				case "directory":
					vars := sv.vars(k.here, nil)
					val, err := sv.expand(k, vars, nil)
					if err != nil {
						return err
					}
					sv.dir = val
					sv.r.find(k.pos, Approx, "[supervisord] directory = "+k.value, "supervisord changes to it when it daemonizes, so programs without a directory start there: written as their dir")
				case "user":
					val, err := sv.expand(k, sv.vars(k.here, nil), nil)
					if err != nil {
						return err
					}
					name, ok := svUser(val)
					if !ok {
						sv.r.find(k.pos, Dropped, "[supervisord] user = "+k.value, "%s", svUIDNote(val))
						continue
					}
					sv.user = name
					alt := ""
					if name != "root" {
						alt = " or " + name
					}
					sv.r.find(k.pos, Approx, "[supervisord] user = "+k.value, "supervisord switches to this user as it starts, so its programs run as it: "+
						"written as user = %s on every service without a user of its own. corral's daemon keeps the user it is started as, and runs these services "+
						"as %s only when that is root%s; otherwise it refuses the whole file, as supervisord refuses to start", quote(name), name, alt)
				case "umask":
					val, err := sv.expand(k, sv.vars(k.here, nil), nil)
					if err != nil {
						return err
					}
					mask, err := svUmask(k, val)
					if err != nil {
						return err
					}
					if nd := ini.section("supervisord").get("nodaemon"); nd != nil {
						if b, err := pyBool(nd.value); err == nil && b {
							sv.r.find(k.pos, Moot, "[supervisord] umask = "+k.value, "supervisord sets its umask only when it daemonizes, and nodaemon = true: "+
								"its programs get the umask it was started with, as corral's services get the daemon's")
							continue
						}
					}
					sv.umask = mask
					sv.r.find(k.pos, Approx, "[supervisord] umask = "+k.value, "supervisord sets it when it daemonizes, and its programs inherit it: "+
						"written as umask = %s on every service without a umask of its own (supervisord started with -n keeps the umask it was started with)", quote(mask))
				default:
					d, ok := svDaemonKeys[k.name]
					if !ok {
						d.kind, d.note = Dropped, "not a [supervisord] setting the importer knows"
					}
					sv.r.find(k.pos, d.kind, "[supervisord] "+k.name+" = "+k.value, "%s", d.note)
				}
			}
		case "unix_http_server", "inet_http_server", "supervisorctl", "rpcinterface", "ctlplugin":
			// Only the keys: these sections hold passwords.
			keys := make([]string, len(sec.keys))
			for i, k := range sec.keys {
				keys[i] = k.name
			}
			sv.r.find(sec.pos, Moot, "["+sec.name+"] "+strings.Join(keys, ", "),
				"corral is controlled through its own socket (mode 0600, only its user) by the corral command and its HTTP API (docs/api.md); there is no server to configure")
		case "group":
			progs := sec.get("programs")
			if progs == nil {
				return &ParseError{sec.pos, "[" + sec.name + "] has no programs = setting"}
			}
			def := svGroupDef{name: name, pos: sec.pos}
			prio := 999
			if p := sec.get("priority"); p != nil {
				n, err := strconv.Atoi(strings.TrimSpace(p.value))
				if err != nil {
					return &ParseError{p.pos, fmt.Sprintf("priority %q is not a number", p.value)}
				}
				prio = n
			}
			for _, p := range strings.Split(progs.value, ",") {
				p = strings.TrimSpace(p)
				if p == "" {
					continue
				}
				if ini.section("program:"+p) == nil {
					return &ParseError{progs.pos, fmt.Sprintf("[%s] names unknown program %s (supervisord refuses it too)", sec.name, p)}
				}
				sv.groups[p] = svGroup{name: name, priority: prio}
				def.programs = append(def.programs, p)
			}
			sv.groupDefs = append(sv.groupDefs, def)
			for _, k := range sec.keys {
				switch k.name {
				case "programs":
				case "priority":
					sv.r.find(k.pos, Approx, "["+sec.name+"] priority = "+k.value, "orders the group's programs among the others: see after = in their services")
				default:
					sv.r.find(k.pos, Dropped, "["+sec.name+"] "+k.name+" = "+k.value, "not a [group:x] setting the importer knows")
				}
			}
		case "program", "include", "DEFAULT":
		case "eventlistener":
			sv.r.find(sec.pos, Dropped, "["+sec.name+"]", "supervisord's event listener protocol (events on the program's stdin) has no corral equivalent; "+
				"corral events -f (or the API's event stream) gives a program the lifecycle events to act on")
		case "fcgi-program":
			sv.r.find(sec.pos, Dropped, "["+sec.name+"]", "corral does not create a FastCGI socket for a program to inherit; "+
				"run the program so that it listens itself (e.g. spawn-fcgi -n, or the server's own --bind option) as a service")
		default:
			sv.r.find(sec.pos, Dropped, "["+sec.name+"]", "not a supervisord section the importer knows")
		}
	}
	return nil
}

// svProgramKeys says, for each [program:x] key that does not map to a
// corral key, why.
var svProgramKeys = map[string]struct {
	kind Kind
	note string
}{
	"stopasgroup":             {Moot, "corral always signals every process of the service's container, not a process group: children that left the group (setsid) are signalled too"},
	"killasgroup":             {Moot, "corral always kills the service's whole container at the end of the grace period, process group or not"},
	"stdout_logfile_maxbytes": {Dropped, "corral rotates a service's log at 10 MB and keeps 3 old files; not configurable per service"},
	"stdout_logfile_backups":  {Dropped, "corral rotates a service's log at 10 MB and keeps 3 old files; not configurable per service"},
	"stderr_logfile_maxbytes": {Dropped, "corral rotates a service's log at 10 MB and keeps 3 old files; not configurable per service"},
	"stderr_logfile_backups":  {Dropped, "corral rotates a service's log at 10 MB and keeps 3 old files; not configurable per service"},
	"stdout_capture_maxbytes": {Dropped, "supervisord's capture mode feeds its event listeners; corral has none (corral events -f streams lifecycle events)"},
	"stderr_capture_maxbytes": {Dropped, "supervisord's capture mode feeds its event listeners; corral has none (corral events -f streams lifecycle events)"},
	"stdout_events_enabled":   {Dropped, "supervisord's output events feed its event listeners; corral has none (corral logs NAME -f follows the output)"},
	"stderr_events_enabled":   {Dropped, "supervisord's output events feed its event listeners; corral has none (corral logs NAME -f follows the output)"},
	"stdout_syslog":           {Dropped, "corral does not send output to syslog; it keeps it in .corral/logs/NAME.log (corral logs NAME)"},
	"stderr_syslog":           {Dropped, "corral does not send output to syslog; it keeps it in .corral/logs/NAME.log (corral logs NAME)"},
	"serverurl": {Dropped, "programs that talk to corral use its socket through the corral command or the client library " +
		"(CORRAL_SERVICE and CORRAL_INSTANCE are in their environment)"},
}

// svDefaults are supervisord's defaults for the keys that shape a
// service's restart policy.
const (
	svStartSecs    = 1
	svStartRetries = 3
)

// programs turns each [program:x] into one service per process.
func (sv *svImport) programs(ini *iniFile) error {
	defaults := ini.section("DEFAULT")
	for _, sec := range ini.sections {
		typ, progName, ok := strings.Cut(sec.name, ":")
		if typ != "program" || !ok {
			continue
		}
		if strings.ContainsAny(progName, " :/") || strings.TrimSpace(progName) == "" {
			return &ParseError{sec.pos, fmt.Sprintf("invalid program name %q (supervisord refuses spaces, : and /)", progName)}
		}
		get := func(name string) *iniKey {
			if k := sec.get(name); k != nil {
				return k
			}
			if defaults != nil {
				return defaults.get(name)
			}
			return nil
		}
		group := progName
		g, grouped := sv.groups[progName]
		if grouped {
			group = g.name
		}
		base := map[string]any{"program_name": progName, "group_name": group, "host_node_name": sv.o.hostname()}
		val := func(k *iniKey) (string, error) { return sv.expand(k, sv.vars(k.here, base), nil) }
		numprocs, err := svInt(get("numprocs"), 1, val)
		if err != nil {
			return err
		}
		start, err := svInt(get("numprocs_start"), 0, val)
		if err != nil {
			return err
		}
		if numprocs < 1 {
			return &ParseError{get("numprocs").pos, "numprocs must be at least 1"}
		}
		nameKey := get("process_name")
		if numprocs > 1 && (nameKey == nil || !strings.Contains(nameKey.value, "%(process_num)")) {
			pos := sec.pos
			if nameKey != nil {
				pos = nameKey.pos
			}
			return &ParseError{pos, "numprocs > 1 needs %(process_num) in process_name (supervisord refuses it too), e.g. process_name = %(program_name)s_%(process_num)02d"}
		}
		for num := start; num < start+numprocs; num++ {
			if err := sv.process(sec, defaults, get, progName, group, grouped, g, num, numprocs); err != nil {
				return err
			}
		}
	}
	return nil
}

// process builds the service of one process of a program.
func (sv *svImport) process(sec, defaults *iniSection, get func(string) *iniKey, progName, group string, grouped bool, g svGroup, num, numprocs int) error {
	r := sv.r
	s := &Service{Origin: sec.pos, From: "[" + sec.name + "]"}
	if numprocs > 1 {
		s.From += fmt.Sprintf(", process %d", num)
	}
	vars := map[string]any{"program_name": progName, "group_name": group, "host_node_name": sv.o.hostname(),
		"process_num": num, "numprocs": numprocs}
	// used collects, per key, what came from outside the file.
	used := map[*iniKey][]string{}
	val := func(k *iniKey) (string, error) {
		var u []string
		v, err := sv.expand(k, sv.vars(k.here, vars), &u)
		if len(u) > 0 {
			used[k] = u
		}
		return v, err
	}

	// environment first: its variables are %(ENV_X)s to every other key.
	for _, e := range sv.envVars {
		s.setEnv(e.Key, e.Value, e.Comment)
	}
	if k := get("environment"); k != nil {
		v, err := val(k)
		if err != nil {
			return err
		}
		pairs, err := envPairs(v)
		if err != nil {
			return &ParseError{k.pos, "environment: " + err.Error()}
		}
		// A variable whose value came from outside the file keeps saying
		// so when another key refers to it.
		var outside []string
		for _, u := range used[k] {
			if u == "%(host_node_name)s" {
				outside = append(outside, sv.o.hostname())
			} else if v, ok := sv.o.lookupEnv(strings.TrimSuffix(strings.TrimPrefix(u, "%(ENV_"), ")s")); ok && v != "" {
				outside = append(outside, v)
			}
		}
		writtenOutside := false // a written variable took a value from outside
		var passed []string
		for _, kv := range pairs {
			vars["ENV_"+kv[0]] = kv[1]
			tainted := slices.ContainsFunc(outside, func(o string) bool { return strings.Contains(kv[1], o) })
			if tainted {
				vars["ENV_"+kv[0]] = outsideValue(kv[1])
			}
			if passthrough(k.value, kv[0]) {
				passed = append(passed, "%(ENV_"+kv[0]+")s")
				// KEY=%(ENV_KEY)s copies the daemon's own variable: corral's
				// services inherit the daemon's environment anyway.
				s.find(k.pos, Moot, kv[0]+"=%(ENV_"+kv[0]+")s", "services inherit corral's environment: start corral with %s set, and it reaches the service as it did from supervisord", kv[0])
				continue
			}
			if kv[0] == "CORRAL_SERVICE" || kv[0] == "CORRAL_INSTANCE" {
				s.find(k.pos, Dropped, kv[0], "corral sets it for every process of a service itself")
				continue
			}
			s.setEnv(kv[0], kv[1], k.pos.String())
			writtenOutside = writtenOutside || tainted
		}
		if !writtenOutside {
			// Only passed on: nothing from outside was written.
			used[k] = slices.DeleteFunc(used[k], func(u string) bool { return slices.Contains(passed, u) })
		}
	}

	nameKey := get("process_name")
	name := progName
	if nameKey != nil {
		v, err := val(nameKey)
		if err != nil {
			return err
		}
		name = strings.TrimSpace(v)
	}

	cmdKey := get("command")
	if cmdKey == nil || strings.TrimSpace(cmdKey.value) == "" {
		return &ParseError{sec.pos, "[" + sec.name + "] has no command (supervisord refuses it too)"}
	}
	cmd, err := val(cmdKey)
	if err != nil {
		return err
	}
	argv, err := splitWords(cmd)
	if err != nil {
		return &ParseError{cmdKey.pos, "command: " + err.Error()}
	}
	if len(argv) == 0 {
		return &ParseError{cmdKey.pos, "command is empty"}
	}
	s.Command = argv

	if k := get("directory"); k != nil {
		v, err := val(k)
		if err != nil {
			return err
		}
		s.Dir = r.dir(v)
	} else if sv.dir != "" {
		s.Dir = r.dir(sv.dir)
	}

	s.User, s.Umask = sv.user, sv.umask
	if k := get("user"); k != nil {
		v, err := val(k)
		if err != nil {
			return err
		}
		name, ok := svUser(v)
		switch {
		case !ok:
			s.User = ""
			s.find(k.pos, Dropped, "user = "+k.value, "%s", svUIDNote(v))
		case sv.user != "" && sv.user != "root" && name != sv.user:
			s.User = name
			s.find(k.pos, Approx, "user = "+k.value, "written as user = %s: supervisord runs as %s ([supervisord] user) and cannot switch to %s, "+
				"so it fails this program's start; corral, run as root, runs the service as %s", quote(name), sv.user, name, name)
		default:
			s.User = name
			s.find(k.pos, Approx, "user = "+k.value, "written as user = %s: running as another user needs corral's daemon to run as root, as supervisord does; "+
				"where it does not, or where there is no user %s, corral refuses the whole file at load (supervisord fails only this program's start)", quote(name), name)
		}
	}
	if k := get("umask"); k != nil {
		v, err := val(k)
		if err != nil {
			return err
		}
		if s.Umask, err = svUmask(k, v); err != nil {
			return err
		}
	}

	autostart := true
	if k := get("autostart"); k != nil {
		v, err := val(k)
		if err != nil {
			return err
		}
		b, err := pyBool(v)
		if err != nil {
			return &ParseError{k.pos, "autostart: " + err.Error()}
		}
		autostart = b
		s.Autostart = &b
	}

	// Restarts: see the file's note on restarts (restartNote).
	policy := "on-failure"
	autorestart := "unexpected"
	if k := get("autorestart"); k != nil {
		v, err := val(k)
		if err != nil {
			return err
		}
		switch lv := strings.ToLower(strings.TrimSpace(v)); {
		case lv == "unexpected":
		case slices.Contains(pyTrue, lv):
			policy, autorestart = "always", "true"
		case slices.Contains(pyFalse, lv):
			policy, autorestart = "never", "false"
		default:
			return &ParseError{k.pos, fmt.Sprintf("autorestart: %q is not true, false or unexpected", v)}
		}
	}
	if k := get("exitcodes"); k != nil {
		v, _ := val(k)
		codes := strings.Join(strings.Fields(strings.ReplaceAll(v, ",", " ")), ",")
		switch {
		case autorestart != "unexpected":
			s.find(k.pos, Moot, "exitcodes = "+k.value, "exit codes decide only autorestart=unexpected, and this program has autorestart=%s", autorestart)
		case codes == "0":
		default:
			s.find(k.pos, Approx, "exitcodes = "+k.value, "corral's on-failure restarts after every exit status but 0 (and a death by signal); "+
				"an exit with %s is restarted too", codes)
		}
	}
	startsecs, err := svInt(get("startsecs"), svStartSecs, val)
	if err != nil {
		return err
	}
	retries, err := svInt(get("startretries"), svStartRetries, val)
	if err != nil {
		return err
	}
	if startsecs < 0 || retries < 0 {
		return &ParseError{sec.pos, "startsecs and startretries must not be negative"}
	}
	s.Restart = Restart{Policy: policy, Backoff: "1s"}
	switch {
	case policy == "never":
		// Nothing is restarted: the start limit has nothing to count.
		s.Restart = Restart{Policy: policy}
		for _, name := range []string{"startsecs", "startretries"} {
			if k := get(name); k != nil {
				s.find(k.pos, Moot, name+" = "+k.value, "decides only how a program is restarted, and this one has autorestart=false")
			}
		}
	case startsecs == 0:
		// supervisord counts such a program as started at once and never
		// gives up on it.
		zero := 0
		s.Restart.Burst, s.Restart.StableAfter = &zero, "0s"
	default:
		burst, window := startLimit(retries, time.Second, 30*time.Second, time.Duration(startsecs)*time.Second)
		s.Restart.Burst, s.Restart.Window, s.Restart.StableAfter = &burst, fmtDuration(window), seconds(min(startsecs, 86400))
	}
	if k := get("startsecs"); k != nil && policy != "never" {
		if startsecs == 0 {
			s.find(k.pos, Approx, "startsecs = "+k.value, "written as stable_after = \"0s\" and burst = 0 (no start limit, as supervisord never gives up on it); "+
				"with no ready probe every crash then doubles the delay, up to max_backoff (30s)")
		} else {
			s.find(k.pos, Approx, "startsecs = "+k.value, "written as restart.stable_after = %q: an instance that ran that long started successfully", s.Restart.StableAfter)
		}
	}
	if k := get("startretries"); k != nil && startsecs > 0 && policy != "never" {
		s.find(k.pos, Approx, "startretries = "+k.value, "written as restart.burst = %d within window = %q (the first start and %d retries; see the note on restarts at the top)",
			*s.Restart.Burst, s.Restart.Window, retries)
	}

	var stop Stop
	if k := get("stopsignal"); k != nil {
		v, err := val(k)
		if err != nil {
			return err
		}
		sig, ok := signalName(v)
		if !ok {
			return &ParseError{k.pos, fmt.Sprintf("stopsignal: %q is not a signal", v)}
		}
		stop.Signal = sig
	}
	if k := get("stopwaitsecs"); k != nil {
		n, err := svInt(k, 10, val)
		if err != nil {
			return err
		}
		if n > 3600 {
			s.find(k.pos, Approx, "stopwaitsecs = "+k.value, "corral's grace is at most 1h: written as \"1h\"")
			n = 3600
		}
		stop.Grace = seconds(max(n, 0))
	}
	s.Stop = stop

	// The program's keys, then those of [DEFAULT] it did not override.
	keys := slices.Clone(sec.keys)
	if defaults != nil {
		for _, k := range defaults.keys {
			if sec.get(k.name) == nil {
				keys = append(keys, k)
			}
		}
	}
	for _, k := range keys {
		switch k.name {
		case "command", "directory", "environment", "autostart", "autorestart", "exitcodes", "startsecs", "startretries",
			"stopsignal", "stopwaitsecs", "process_name", "numprocs", "numprocs_start", "user", "umask":
		case "priority":
			// after = is decided once every program is known.
		case "redirect_stderr":
			if b, err := pyBool(k.value); err == nil && b {
				s.find(k.pos, Moot, "redirect_stderr = "+k.value, "corral keeps stdout and stderr in one log, line by line (corral logs NAME)")
			} else {
				s.find(k.pos, Approx, "redirect_stderr = "+k.value, "corral keeps stderr with stdout in one log, line by line; there is no separate stderr log")
			}
		case "stdout_logfile", "stderr_logfile":
			v, err := val(k)
			if err != nil {
				return err
			}
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "auto":
				s.find(k.pos, Moot, k.name+" = "+k.value, "corral keeps the output in .corral/logs/NAME.log (corral logs NAME)")
			case "none", "off":
				s.find(k.pos, Approx, k.name+" = "+k.value, "corral always keeps the output, in .corral/logs/NAME.log (rotated at 10 MB, 3 old files)")
			default:
				s.find(k.pos, Dropped, k.name+" = "+k.value, "corral writes a service's output (stdout and stderr) to .corral/logs/NAME.log, rotated at 10 MB with 3 old files, "+
					"and not to a file of your choice: read it with corral logs NAME [-f], or tee it in the command")
			}
		default:
			if d, ok := svProgramKeys[k.name]; ok {
				s.find(k.pos, d.kind, k.name+" = "+k.value, "%s", d.note)
			} else {
				s.find(k.pos, Dropped, k.name+" = "+k.value, "not a supervisord program setting the importer knows")
			}
		}
	}
	// Values taken from outside the file (the environment of the import,
	// the host name) are baked in: corral's values are literal.
	for _, k := range keys {
		if u := used[k]; len(u) > 0 {
			s.find(k.pos, Approx, k.name+" = "+k.value, "%s expanded at import with the value here (supervisord expands it when it starts; corral's values are literal): import again where corral runs if it differs",
				strings.Join(u, ", "))
		}
	}
	if numprocs > 1 {
		s.Notes = append(s.Notes, fmt.Sprintf("process %d of numprocs = %d: corral has no instance count, each process is a service of its own", num, numprocs))
	}
	r.addService(s, name)
	p := svProgram{prog: progName, svc: s, priority: 999, autostart: autostart, explicit: get("priority")}
	if p.explicit != nil {
		n, err := strconv.Atoi(strings.TrimSpace(p.explicit.value))
		if err != nil {
			return &ParseError{p.explicit.pos, fmt.Sprintf("priority %q is not a number", p.explicit.value)}
		}
		p.priority = n
	}
	p.group = p.priority
	if grouped {
		p.group = g.priority
	}
	sv.progs = append(sv.progs, p)
	return nil
}

// groupsOut writes each [group:x] as a group of the services of its
// programs, in the order of its programs = (and of their processes).
func (sv *svImport) groupsOut() {
	for _, def := range sv.groupDefs {
		var members []string
		for _, prog := range def.programs {
			for _, p := range sv.progs {
				if p.prog == prog {
					members = append(members, p.svc.Name)
				}
			}
		}
		g := sv.r.addGroup(def.name, def.pos, "[group:"+def.name+"]", members)
		if g == nil {
			continue
		}
		for _, p := range sv.progs {
			if slices.Contains(g.Members, p.svc.Name) {
				p.svc.Notes = append(p.svc.Notes, fmt.Sprintf("member of [group:%s]: groups.%s (corral restart @%s)", def.name, key(g.Name), g.Name))
			}
		}
	}
}

// svUser reads a user = value: a name, or a uid. corral's user takes a
// name; uid 0 is root everywhere, any other uid is not written.
func svUser(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if _, err := strconv.ParseUint(v, 10, 32); err == nil {
		if n, _ := strconv.Atoi(v); n == 0 {
			return "root", true
		}
		return "", false
	}
	return v, v != ""
}

func svUIDNote(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return "empty: the service runs as corral's user"
	}
	return fmt.Sprintf("corral's user takes a user name, not a uid: write user = \"NAME\" with the name of uid %s (getent passwd %s) where the service should run", v, v)
}

// svUmask reads a umask = value as supervisord does (octal, "022" or
// "0o22") and writes it as corral takes it ("022").
func svUmask(k *iniKey, v string) (string, error) {
	t := strings.TrimSpace(v)
	t = strings.TrimPrefix(strings.TrimPrefix(t, "0o"), "0O")
	n, err := strconv.ParseUint(t, 8, 32)
	if err != nil || t == "" {
		return "", &ParseError{k.pos, fmt.Sprintf("umask: %q is not an octal number (supervisord refuses it too), e.g. umask = 022", v)}
	}
	// The kernel keeps the permission bits of a umask only.
	return fmt.Sprintf("%03o", n&0o777), nil
}

// passthrough reports whether an environment= value sets key to
// %(ENV_key)s and nothing else.
func passthrough(raw, key string) bool {
	re := regexp.MustCompile(`(?:^|[,\s])` + regexp.QuoteMeta(key) + `\s*=\s*["']?%\(ENV_` + regexp.QuoteMeta(key) + `\)s["']?\s*(?:,|$)`)
	return re.MatchString(raw)
}

func svInt(k *iniKey, def int, val func(*iniKey) (string, error)) (int, error) {
	if k == nil {
		return def, nil
	}
	v, err := val(k)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, &ParseError{k.pos, fmt.Sprintf("%s: %q is not a number", k.name, v)}
	}
	return n, nil
}

// priorities turns supervisord's start order into after = lists: a service
// starts after the autostarted services of the nearest lower priority.
// supervisord starts groups by their priority and a group's programs by
// theirs, and stops in reverse; corral's after waits until those services
// are ready and stops in reverse too.
func (sv *svImport) priorities() {
	type level struct{ group, prio int }
	var levels []level
	for _, p := range sv.progs {
		if !p.autostart {
			continue
		}
		l := level{p.group, p.priority}
		if !slices.Contains(levels, l) {
			levels = append(levels, l)
		}
	}
	sort.Slice(levels, func(i, j int) bool {
		if levels[i].group != levels[j].group {
			return levels[i].group < levels[j].group
		}
		return levels[i].prio < levels[j].prio
	})
	for i := range sv.progs {
		p := &sv.progs[i]
		var after []string
		if p.autostart {
			idx := slices.Index(levels, level{p.group, p.priority})
			if idx > 0 {
				prev := levels[idx-1]
				for _, q := range sv.progs {
					if q.autostart && q.group == prev.group && q.priority == prev.prio {
						after = append(after, q.svc.Name)
					}
				}
			}
		}
		p.svc.After = after
		if p.explicit == nil && len(after) == 0 {
			continue
		}
		setting := "priority = 999 (the default)"
		pos := p.svc.Origin
		if p.explicit != nil {
			setting, pos = "priority = "+p.explicit.value, p.explicit.pos
		}
		switch {
		case len(after) > 0:
			p.svc.find(pos, Approx, setting, "written as after = %s: corral starts this service once those are ready (supervisord only starts them first), and stops it before them",
				array(after))
		case !p.autostart:
			p.svc.find(pos, Moot, setting, "the program does not start by itself (autostart = false), so it has no place in the start order")
		default:
			p.svc.find(pos, Moot, setting, "no program starts before this one: nothing to wait for")
		}
	}
}

// startLimit maps "give up after retries quick failures" to corral's start
// limit: burst is the first start and the retries, and the window is long
// enough to hold all of them at corral's doubling delay (backoff, capped at
// maxBackoff) plus minUp each, twice over, so that a program that keeps
// failing quickly is failed as the source would, while one that crashes
// after running a while is restarted as often as it crashes.
func startLimit(retries int, backoff, maxBackoff, minUp time.Duration) (burst int, window time.Duration) {
	burst = min(retries+1, 1000)
	total := time.Duration(burst) * max(minUp, time.Second)
	d := backoff
	for i := 0; i < burst-1 && total < 168*time.Hour; i++ {
		total += d
		d = min(d*2, maxBackoff)
	}
	window = (2*total + time.Second - 1).Truncate(time.Second)
	if window > 2*time.Minute {
		window = (window + time.Minute - 1).Truncate(time.Minute) // "8m" reads better than "472s"
	}
	return burst, min(max(window, 10*time.Second), 168*time.Hour)
}

var (
	pyTrue  = []string{"yes", "true", "on", "1"}
	pyFalse = []string{"no", "false", "off", "0"}
)

// pyBool is supervisord's boolean.
func pyBool(s string) (bool, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	switch {
	case slices.Contains(pyTrue, l):
		return true, nil
	case slices.Contains(pyFalse, l):
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true/false, yes/no, on/off, 1/0)", s)
}

var signalNumbers = map[int]string{1: "HUP", 2: "INT", 3: "QUIT", 9: "KILL", 10: "USR1", 12: "USR2", 15: "TERM"}

var signalNames = []string{"HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "ABRT", "ALRM", "CONT", "STOP", "TSTP", "WINCH", "PWR"}

// signalName normalises supervisord's stopsignal (TERM, SIGTERM, 15).
func signalName(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(s); err == nil {
		name, ok := signalNumbers[n]
		return name, ok
	}
	s = strings.TrimPrefix(s, "SIG")
	return s, slices.Contains(signalNames, s)
}

// vars returns the expansions every key of a program sees: %(here)s (the
// directory of the key's own file), the [supervisord] environment as
// ENV_X, then the environment of the import, which lookup reads lazily.
func (sv *svImport) vars(here string, base map[string]any) map[string]any {
	v := map[string]any{"here": here, "host_node_name": sv.o.hostname()}
	for k, x := range sv.env {
		v["ENV_"+k] = x
	}
	for k, x := range base {
		v[k] = x
	}
	return v
}

var pyFormatRE = regexp.MustCompile(`%(?:%|\(([^)]*)\)([#0\- +]*)(\d*)(?:\.(\d+))?[hlL]?([diouxXeEfFgGcrsa]))`)

// expand does what Python's `value % expansions` does for the formats
// supervisord's files use: %(name)s, %(name)d with flags and width
// (%(process_num)02d), and %% for a literal %. A lone % is an error, as it
// is to supervisord (write %% instead). used, when set, collects the
// names that came from the environment of the import or the host.
func (sv *svImport) expand(k *iniKey, vars map[string]any, used *[]string) (string, error) {
	s := k.value
	var out strings.Builder
	last := 0
	for _, m := range pyFormatRE.FindAllStringSubmatchIndex(s, -1) {
		if strings.Contains(s[last:m[0]], "%") {
			break // handled below as a bad format
		}
		out.WriteString(s[last:m[0]])
		last = m[1]
		if s[m[0]:m[1]] == "%%" {
			out.WriteByte('%')
			continue
		}
		name := s[m[2]:m[3]]
		flags, width, conv := s[m[4]:m[5]], s[m[6]:m[7]], s[m[10]:m[11]]
		// The file's own variables win over the environment of the import,
		// as [supervisord] and program environments extend supervisord's.
		v, ok := vars[name]
		if !ok && strings.HasPrefix(name, "ENV_") {
			v, ok = sv.o.lookupEnv(strings.TrimPrefix(name, "ENV_"))
			if ok && used != nil {
				*used = appendNew(*used, "%("+name+")s")
			}
		} else if ok && used != nil && name == "host_node_name" {
			*used = appendNew(*used, "%(host_node_name)s")
		} else if _, tainted := v.(outsideValue); tainted && used != nil {
			*used = appendNew(*used, "%("+name+")s")
		}
		if !ok {
			if strings.HasPrefix(name, "ENV_") {
				env := strings.TrimPrefix(name, "ENV_")
				return "", &ParseError{k.pos, fmt.Sprintf("%s: %%(%s)s: %s is not set in the environment of the import (supervisord would refuse the file too): "+
					"set it, e.g. %s=... corral import ..., and import again", k.name, name, env, env)}
			}
			return "", &ParseError{k.pos, fmt.Sprintf("%s: %%(%s)s cannot be expanded (supervisord knows here, program_name, group_name, host_node_name, process_num, numprocs and ENV_X)", k.name, name)}
		}
		str, err := pyConv(v, flags, width, conv)
		if err != nil {
			return "", &ParseError{k.pos, fmt.Sprintf("%s: %%(%s)%s: %v", k.name, name, conv, err)}
		}
		out.WriteString(str)
	}
	if rest := s[last:]; strings.Contains(rest, "%") {
		return "", &ParseError{k.pos, fmt.Sprintf("%s: a %% that is not %%(name)s: supervisord refuses it too; write %%%% for a literal %%", k.name)}
	}
	out.WriteString(s[last:])
	return out.String(), nil
}

// outsideValue is a program environment variable whose value came from
// the environment of the import.
type outsideValue string

func appendNew(ss []string, s string) []string {
	if slices.Contains(ss, s) {
		return ss
	}
	return append(ss, s)
}

// pyConv formats one value as Python's % operator would for the
// conversions supervisord's values need.
func pyConv(v any, flags, width, conv string) (string, error) {
	var s string
	switch conv {
	case "s", "r", "a":
		s = fmt.Sprint(v)
	case "d", "i", "u":
		n, ok := v.(int)
		if !ok {
			return "", fmt.Errorf("%%%s needs a number, and this is a string", conv)
		}
		s = strconv.Itoa(n)
		if strings.Contains(flags, "0") && !strings.Contains(flags, "-") && width != "" {
			w, _ := strconv.Atoi(width)
			neg := n < 0
			digits := strings.TrimPrefix(s, "-")
			for len(digits)+boolInt(neg) < w {
				digits = "0" + digits
			}
			if neg {
				digits = "-" + digits
			}
			return digits, nil
		}
	default:
		return "", fmt.Errorf("conversion %%%s is not supported by the importer", conv)
	}
	if width != "" {
		w, _ := strconv.Atoi(width)
		for len(s) < w {
			if strings.Contains(flags, "-") {
				s += " "
			} else {
				s = " " + s
			}
		}
	}
	return s, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
