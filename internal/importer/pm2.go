package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrNoNode is returned for a JavaScript ecosystem file where no node
// binary is installed to evaluate it.
var ErrNoNode = errors.New("importer: node is not installed")

// pmObj is a JSON or YAML object with the line of each key (0 where the
// source gives none: a JavaScript file evaluated by node).
type pmObj struct {
	line  int
	keys  []string
	vals  map[string]any // string, float64, bool, nil, []any, *pmObj
	lines map[string]int
}

func (o *pmObj) get(k string) (any, bool) {
	v, ok := o.vals[k]
	return v, ok
}

func (o *pmObj) set(k string, v any, line int) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
	o.lines[k] = line
}

func newObj(line int) *pmObj {
	return &pmObj{line: line, vals: map[string]any{}, lines: map[string]int{}}
}

// ImportPM2 reads a PM2 ecosystem file: JSON and YAML directly, JavaScript
// (ecosystem.config.js, .cjs, .mjs) by evaluating it with node, as PM2
// itself does. Each app becomes a service (each instance, in fork mode).
func ImportPM2(ctx context.Context, path string, o Options) (*Result, error) {
	r := &Result{Format: PM2, outDir: o.outDir()}
	disp := r.display(path)
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("importer: %w", err)
	}
	var top any
	lineKnown := true
	switch ext := strings.ToLower(filepath.Ext(path)); {
	case ext == ".js" || ext == ".cjs" || ext == ".mjs":
		out, err := evalNode(ctx, path, &o)
		if err != nil {
			return nil, err
		}
		if top, err = decodeJSON(out, "", false); err != nil {
			return nil, fmt.Errorf("importer: %s: node printed something that is not JSON: %w", disp, err)
		}
		lineKnown = false
		r.find(Pos{disp, 0}, Approx, "evaluated with node", "the file ran in the environment of the import: any value it computes "+
			"(process.env, the host, the time) is written as it was here; corral's values are literal")
	case ext == ".yaml" || ext == ".yml":
		if top, err = decodeYAML(src, disp); err != nil {
			return nil, err
		}
	default:
		if top, err = decodeJSON(src, disp, true); err != nil {
			return nil, err
		}
	}
	r.Sources = append(r.Sources, disp)

	var apps []any
	switch t := top.(type) {
	case []any:
		apps = t
	case *pmObj:
		if a, ok := t.get("apps"); ok {
			switch a := a.(type) {
			case []any:
				apps = a
			case *pmObj:
				apps = []any{a}
			default:
				return nil, &ParseError{Pos{disp, t.lines["apps"]}, "apps is not a list of apps"}
			}
			for _, k := range t.keys {
				if k != "apps" {
					r.find(Pos{disp, t.lines[k]}, Dropped, k, "%s", pmTopKeyNote(k))
				}
			}
		} else if _, ok := t.get("script"); ok {
			apps = []any{t} // a single app
		} else {
			return nil, &ParseError{Pos{disp, t.line}, "no apps: PM2 wants { apps: [ { name, script, ... } ] }"}
		}
	default:
		return nil, &ParseError{Pos{disp, 0}, "not an ecosystem file: PM2 wants { apps: [ { name, script, ... } ] }"}
	}
	if len(apps) == 0 {
		return nil, &ParseError{Pos{disp, 0}, "apps is empty: nothing to import"}
	}
	base := filepath.Dir(path)
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	var spaces []*pmSpace
	for i, a := range apps {
		app, ok := a.(*pmObj)
		if !ok {
			return nil, &ParseError{Pos{disp, 0}, fmt.Sprintf("app %d is not an object", i+1)}
		}
		if !lineKnown {
			app.line = findAppLine(src, app)
		}
		if err := pm2App(r, app, disp, base, &o, lineKnown, &spaces); err != nil {
			return nil, err
		}
	}
	// Each namespace is a group of its apps' services (pm2 restart NS is
	// corral restart @NS).
	for _, ns := range spaces {
		g := r.addGroup(ns.name, ns.pos, "namespace "+strconv.Quote(ns.name), ns.members)
		if g == nil {
			continue
		}
		for _, s := range r.Services {
			if slices.Contains(g.Members, s.Name) {
				s.Notes = append(s.Notes, fmt.Sprintf("namespace %q: groups.%s (corral restart @%s)", ns.name, key(g.Name), g.Name))
			}
		}
	}
	return r, nil
}

// pmSpace is a PM2 namespace: the services of its apps.
type pmSpace struct {
	name    string
	pos     Pos
	members []string
}

func pmTopKeyNote(k string) string {
	if k == "deploy" {
		return "corral does not deploy; keep using pm2 deploy (or your deploy tool) and run corral where it deploys to"
	}
	return "not read as such: PM2 reads apps (and deploy); values merged from it into an app (<<: *anchor) are imported there"
}

// nodeScript loads the file as PM2 does (require), or as an ES module where
// require cannot, and prints it as JSON; functions are left out, as
// JSON.stringify leaves them out.
const nodeScript = `
const path = require('path'), url = require('url');
const file = path.resolve(process.argv[1]);
(async () => {
  let m;
  try {
    m = require(file);
  } catch (e) {
    if (e.code !== 'ERR_REQUIRE_ESM' && e.code !== 'ERR_REQUIRE_ASYNC_MODULE') throw e;
    m = await import(url.pathToFileURL(file).href);
  }
  if (m && m[Symbol.toStringTag] === 'Module') m = m.default ?? m;
  process.stdout.write(JSON.stringify(m));
})().catch(e => { console.error(e && e.stack || String(e)); process.exit(1); });
`

// evalNode runs node on the ecosystem file, in its directory and the
// environment of the import, and returns what it printed.
func evalNode(ctx context.Context, path string, o *Options) ([]byte, error) {
	node := o.Node
	if node == "" {
		for _, n := range []string{"node", "nodejs"} {
			if p, err := exec.LookPath(n); err == nil {
				node = p
				break
			}
		}
	}
	if node == "" {
		return nil, fmt.Errorf("%w: %s is JavaScript, which only node can evaluate: install Node.js (Debian: apt-get install nodejs), "+
			"or write the apps as ecosystem.json or ecosystem.yaml, which corral import reads without node", ErrNoNode, filepath.Base(path))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("importer: %w", err)
	}
	timeout := o.NodeTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "-e", nodeScript, abs)
	cmd.Dir = filepath.Dir(abs)
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if lines := strings.Split(msg, "\n"); len(lines) > 8 {
			msg = strings.Join(lines[:8], "\n") + "\n..."
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("importer: node did not finish evaluating %s within %v", filepath.Base(path), timeout)
		}
		return nil, fmt.Errorf("importer: node could not evaluate %s (%v):\n%s", filepath.Base(path), err, msg)
	}
	return stdout.Bytes(), nil
}

// findAppLine finds an app of an evaluated file in its source by its name
// (name: 'api'), for the origin comment; 0 where the name is not there
// once.
func findAppLine(src []byte, app *pmObj) int {
	name, _ := app.vals["name"].(string)
	if name == "" {
		return 0
	}
	re := regexp.MustCompile(`\bname['"]?\s*:\s*['"` + "`" + `]` + regexp.QuoteMeta(name) + `['"` + "`" + `]`)
	locs := re.FindAllIndex(src, 2)
	if len(locs) != 1 {
		return 0
	}
	return 1 + bytes.Count(src[:locs[0][0]], []byte("\n"))
}

// decodeJSON decodes JSON keeping each key's line (0 without withLines:
// the JSON node printed has no lines of the file).
func decodeJSON(src []byte, disp string, withLines bool) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	lineAt := func(off int64) int { return 1 + bytes.Count(src[:min(int(off), len(src))], []byte("\n")) }
	keyLine := func(off int64) int {
		if !withLines {
			return 0
		}
		return lineAt(off)
	}
	var value func() (any, error)
	value = func() (any, error) {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				obj := newObj(keyLine(dec.InputOffset()))
				for dec.More() {
					kt, err := dec.Token()
					if err != nil {
						return nil, err
					}
					line := keyLine(dec.InputOffset())
					v, err := value()
					if err != nil {
						return nil, err
					}
					obj.set(kt.(string), v, line)
				}
				_, err := dec.Token()
				return obj, err
			case '[':
				var arr []any
				for dec.More() {
					v, err := value()
					if err != nil {
						return nil, err
					}
					arr = append(arr, v)
				}
				_, err := dec.Token()
				if arr == nil {
					arr = []any{}
				}
				return arr, err
			}
		case json.Number:
			f, err := t.Float64()
			return f, err
		}
		return tok, nil
	}
	v, err := value()
	if err != nil {
		if disp == "" {
			return nil, err
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, &ParseError{Pos{disp, lineAt(se.Offset)}, "not valid JSON: " + se.Error()}
		}
		return nil, &ParseError{Pos{disp, lineAt(dec.InputOffset())}, "not valid JSON: " + err.Error()}
	}
	return v, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// decodeYAML decodes YAML keeping each key's line.
func decodeYAML(src []byte, disp string) (any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		line := 0
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		msg := yamlLineRE.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "")
		return nil, &ParseError{Pos{disp, line}, "not valid YAML: " + strings.TrimPrefix(msg, ": ")}
	}
	if len(doc.Content) == 0 {
		return nil, &ParseError{Pos{disp, 0}, "empty file"}
	}
	var conv func(n *yaml.Node) (any, error)
	conv = func(n *yaml.Node) (any, error) {
		switch n.Kind {
		case yaml.AliasNode:
			return conv(n.Alias)
		case yaml.MappingNode:
			obj := newObj(n.Line)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Tag == "!!merge" { // <<: *defaults
					m, err := conv(v)
					if err != nil {
						return nil, err
					}
					if mo, ok := m.(*pmObj); ok {
						for _, mk := range mo.keys {
							if _, set := obj.vals[mk]; !set {
								obj.set(mk, mo.vals[mk], mo.lines[mk])
							}
						}
					}
					continue
				}
				val, err := conv(v)
				if err != nil {
					return nil, err
				}
				obj.set(k.Value, val, k.Line)
			}
			return obj, nil
		case yaml.SequenceNode:
			arr := []any{}
			for _, c := range n.Content {
				v, err := conv(c)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			return arr, nil
		case yaml.ScalarNode:
			var v any
			if err := n.Decode(&v); err != nil {
				return nil, &ParseError{Pos{disp, n.Line}, err.Error()}
			}
			switch x := v.(type) {
			case int:
				return float64(x), nil
			case int64:
				return float64(x), nil
			case uint64:
				return float64(x), nil
			}
			return v, nil
		case yaml.DocumentNode:
			return conv(n.Content[0])
		}
		return nil, &ParseError{Pos{disp, n.Line}, "unexpected YAML node"}
	}
	return conv(doc.Content[0])
}

// pmString writes a value as PM2 (JavaScript) would turn it into a string.
func pmString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pmString(e)
		}
		return strings.Join(parts, ",")
	case *pmObj:
		b, _ := json.Marshal(x.plain())
		return string(b)
	}
	return fmt.Sprint(v)
}

func (o *pmObj) plain() map[string]any {
	m := map[string]any{}
	for _, k := range o.keys {
		if c, ok := o.vals[k].(*pmObj); ok {
			m[k] = c.plain()
		} else {
			m[k] = o.vals[k]
		}
	}
	return m
}

// pmWords is an args-like value: a string split as a shell would, or a
// list.
func pmWords(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return splitWords(x)
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = pmString(e)
		}
		return out, nil
	}
	return []string{pmString(v)}, nil
}

// pmInterpreters is PM2's interpreter by script extension
// (lib/API/interpreter.json).
var pmInterpreters = map[string]string{".sh": "bash", ".py": "python", ".rb": "ruby", ".php": "php", ".pl": "perl",
	".js": "node", ".mjs": "node", ".cjs": "node", ".coffee": "coffee", ".ls": "lsc", ".ts": "bun", ".tsx": "bun"}

// pmAliases maps PM2's alternative key names to the ones used here.
var pmAliases = map[string]string{"exec": "script", "exec_interpreter": "interpreter", "node_args": "interpreter_args",
	"interpreterArgs": "interpreter_args", "cron": "cron_restart", "uid": "user", "combine_logs": "merge_logs",
	"out": "out_file", "output": "out_file", "out_log": "out_file", "error": "error_file", "err": "error_file",
	"err_file": "error_file", "err_log": "error_file", "log": "log_file", "pid": "pid_file"}

// pmKeyNotes says, for each PM2 key with no corral counterpart, why.
var pmKeyNotes = map[string]struct {
	kind Kind
	note string
}{
	"watch":                 {Dropped, "corral does not restart on file changes: run the program under a watcher (nodemon, watchexec) as the command, or call corral restart NAME from one"},
	"ignore_watch":          {Dropped, "corral does not watch files (see watch)"},
	"watch_delay":           {Dropped, "corral does not watch files (see watch)"},
	"watch_options":         {Dropped, "corral does not watch files (see watch)"},
	"cron_restart":          {Dropped, "corral has no scheduled restarts: run corral restart NAME from cron or a systemd timer"},
	"out_file":              {Dropped, "corral writes a service's output (stdout and stderr) to .corral/logs/NAME.log, rotated at 10 MB with 3 old files: read it with corral logs NAME [-f]"},
	"error_file":            {Dropped, "corral keeps stderr with stdout in .corral/logs/NAME.log (corral logs NAME)"},
	"log_file":              {Dropped, "corral keeps the combined output in .corral/logs/NAME.log (corral logs NAME)"},
	"merge_logs":            {Moot, "corral keeps one log per service"},
	"log_date_format":       {Dropped, "corral's log keeps the program's lines as they are; corral events has the times of starts and exits"},
	"time":                  {Dropped, "corral's log keeps the program's lines as they are; corral events has the times of starts and exits"},
	"log_type":              {Dropped, "corral's log keeps the program's lines as they are"},
	"disable_logs":          {Dropped, "corral always keeps a service's output (10 MB, 3 old files)"},
	"pid_file":              {Dropped, "corral status NAME --json shows the service's pid; corral's own pidfile key means the opposite (a pid a launcher writes)"},
	"shutdown_with_message": {Dropped, "corral stops with a signal (INT here) or an HTTP request (stop.hook), not PM2's IPC message"},
	"wait_ready": {Dropped, "process.send('ready') needs PM2's IPC channel; give the service a ready probe instead " +
		"(ready = { http = \"http://127.0.0.1:PORT/\" }, tcp = \"127.0.0.1:PORT\" or log = \"listening\"), and corral ensure waits for it"},
	"listen_timeout":             {Dropped, "becomes the probe's timeout once the service has a ready probe: ready = { ..., timeout = \"...\" }"},
	"kill_retry_time":            {Moot, "corral kills the whole tree at the end of the grace period and checks that it is empty"},
	"windowsHide":                {Moot, "corral gives Windows services a hidden console of their own"},
	"filter_env":                 {Dropped, "services inherit corral's whole environment plus env"},
	"append_env_to_name":         {Dropped, "service names are written as they are"},
	"name_prefix":                {Dropped, "service names are written as they are"},
	"force":                      {Moot, "corral never runs a second instance of a service"},
	"source_map_support":         {Dropped, "a Node.js option of PM2's wrapper: give node --enable-source-maps in interpreter_args"},
	"disable_source_map_support": {Moot, "corral runs node without PM2's wrapper"},
	"instance_var":               {Moot, "used to number the instances (see env)"},
	"increment_var":              {Moot, "used to number the instances (see env)"},
	"username":                   {Moot, "corral records who started a service in its events"},
	"post_update":                {Dropped, "corral does not update applications"},
	"vizion":                     {Dropped, "PM2's version-control metadata has no corral equivalent"},
	"pmx":                        {Dropped, "PM2's monitoring (pmx, Keymetrics) has no corral equivalent; corral status and events show the services"},
	"automation":                 {Dropped, "PM2's monitoring (pmx, Keymetrics) has no corral equivalent"},
	"trace":                      {Dropped, "PM2's transaction tracing has no corral equivalent"},
	"disable_trace":              {Dropped, "PM2's transaction tracing has no corral equivalent"},
	"v8":                         {Dropped, "PM2's monitoring has no corral equivalent"},
	"event_loop_inspector":       {Dropped, "PM2's monitoring has no corral equivalent"},
	"deep_monitoring":            {Dropped, "PM2's monitoring has no corral equivalent"},
	"io":                         {Dropped, "PM2's monitoring has no corral equivalent"},
	"install_url":                {Dropped, "corral does not install applications"},
	"execute_command":            {Dropped, "not used by corral"},
	"write":                      {Dropped, "not used by corral"},
	"node_version":               {Dropped, "choose node by interpreter (a path) instead"},
}

// PM2's defaults (lib/API/schema.json).
const (
	pmMaxRestarts = 16
	pmMinUptime   = time.Second
	pmKillTimeout = 1600 * time.Millisecond
	pmExpCap      = 15 * time.Second // PM2 grows the exponential delay by 1.5 up to 15s
)

// pm2App turns one app into services.
func pm2App(r *Result, app *pmObj, disp, base string, o *Options, lineKnown bool, spaces *[]*pmSpace) error {
	// Aliases first, so that every key is looked up by one name.
	norm := newObj(app.line)
	for _, k := range app.keys {
		nk := k
		if a, ok := pmAliases[k]; ok {
			nk = a
		}
		norm.set(nk, app.vals[k], app.lines[k])
		if nk != k {
			norm.lines[nk] = app.lines[k]
		}
	}
	app = norm
	pos := func(k string) Pos {
		if l := app.lines[k]; l > 0 {
			return Pos{disp, l}
		}
		return Pos{disp, app.line}
	}
	str := func(k string) string { return pmString(app.vals[k]) }
	raw := func(k string) string {
		v := app.vals[k]
		if s, ok := v.(string); ok {
			return k + " = " + strconv.Quote(s)
		}
		return k + " = " + pmString(v)
	}

	script := str("script")
	if script == "" {
		return &ParseError{Pos{disp, app.line}, "an app without script (PM2 needs script: the program or file to run)"}
	}
	name := str("name")
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(script), filepath.Ext(script))
	}
	dir := base
	if c := str("cwd"); c != "" {
		if strings.HasPrefix(c, "~/") {
			dir = c
		} else if filepath.IsAbs(c) {
			dir = c
		} else {
			dir = filepath.Join(base, c)
		}
	}

	// The command: interpreter, its args, the script, its args.
	args, err := pmWords(app.vals["args"])
	if err != nil {
		return &ParseError{pos("args"), "args: " + err.Error()}
	}
	iargs, err := pmWords(app.vals["interpreter_args"])
	if err != nil {
		return &ParseError{pos("interpreter_args"), "interpreter_args: " + err.Error()}
	}
	interp := str("interpreter")
	mode := strings.TrimSuffix(str("exec_mode"), "_mode")
	var notes []Finding
	if interp == "" {
		interp = pmInterpreters[strings.ToLower(filepath.Ext(script))]
		if interp == "" {
			interp = pmGuessInterpreter(script, dir)
		}
	}
	var argv []string
	switch {
	case interp == "none":
		if strings.ContainsAny(script, " \t") && len(args) == 0 {
			// "npm run start" as the script: PM2 runs such a line through
			// its own lookup; the words are what a shell would run.
			words, err := splitWords(script)
			if err != nil {
				return &ParseError{pos("script"), "script: " + err.Error()}
			}
			argv = words
		} else {
			s := script
			if !strings.ContainsRune(s, '/') && !filepath.IsAbs(s) && fileExists(filepath.Join(dir, s)) {
				s = "./" + s // PM2 runs a file of the app's directory, not one of PATH
			}
			argv = append([]string{s}, args...)
		}
	default:
		argv = append(append(append([]string{interp}, iargs...), script), args...)
	}
	if interp == "none" && len(iargs) > 0 {
		notes = append(notes, Finding{Pos: pos("interpreter_args"), Setting: raw("interpreter_args"), Kind: Dropped,
			Note: "the script runs without an interpreter, so PM2 ignores interpreter arguments too"})
	}

	// Environment: env, then env_NAME for --env NAME, as pm2 start --env.
	var env []EnvVar
	addEnv := func(k string) error {
		v, ok := app.vals[k]
		if !ok {
			return nil
		}
		obj, ok := v.(*pmObj)
		if !ok {
			return &ParseError{pos(k), k + " is not an object of variables"}
		}
		for _, ek := range obj.keys {
			if ek == "CORRAL_SERVICE" || ek == "CORRAL_INSTANCE" {
				notes = append(notes, Finding{Pos: pos(k), Setting: k + "." + ek, Kind: Dropped, Note: "corral sets it for every process of a service itself"})
				continue
			}
			c := pos(k).String()
			if l := obj.lines[ek]; l > 0 {
				c = Pos{disp, l}.String()
			}
			env = setEnvVar(env, ek, pmString(obj.vals[ek]), c)
		}
		return nil
	}
	if err := addEnv("env"); err != nil {
		return err
	}
	var profiles []string
	for _, k := range app.keys {
		if p, ok := strings.CutPrefix(k, "env_"); ok {
			profiles = append(profiles, p)
		}
	}
	if o.PM2Env != "" {
		if !slices.Contains(profiles, o.PM2Env) {
			notes = append(notes, Finding{Pos: Pos{disp, app.line}, Setting: "--env " + o.PM2Env, Kind: Approx,
				Note: fmt.Sprintf("this app has no env_%s: imported with env alone", o.PM2Env)})
		} else if err := addEnv("env_" + o.PM2Env); err != nil {
			return err
		}
	}
	for _, p := range profiles {
		if p == o.PM2Env {
			continue
		}
		obj, _ := app.vals["env_"+p].(*pmObj)
		var keys []string
		if obj != nil {
			keys = obj.keys
		}
		notes = append(notes, Finding{Pos: pos("env_" + p), Setting: "env_" + p + " (" + strings.Join(keys, ", ") + ")", Kind: Dropped,
			Note: fmt.Sprintf("corral's profiles are argument sets, not environments: import again with --env %s to write these variables (pm2 start --env %s)", p, p)})
	}
	if app.vals["port"] != nil {
		env = setEnvVar(env, "PORT", str("port"), pos("port").String()+" (port)")
	}

	// Instances.
	instances := 1
	if v, ok := app.vals["instances"]; ok {
		n := 0
		switch x := v.(type) {
		case float64:
			n = int(x)
		case string:
			if x == "max" {
				n = 0
			} else if n, err = strconv.Atoi(x); err != nil {
				return &ParseError{pos("instances"), fmt.Sprintf("instances: %q is not a number or \"max\"", x)}
			}
		}
		switch {
		case n == 0:
			instances = o.numCPU()
			notes = append(notes, Finding{Pos: pos("instances"), Setting: raw("instances"), Kind: Approx,
				Note: fmt.Sprintf("one per CPU: %d on this machine", instances)})
		case n < 0:
			instances = max(1, o.numCPU()+n)
			notes = append(notes, Finding{Pos: pos("instances"), Setting: raw("instances"), Kind: Approx,
				Note: fmt.Sprintf("the CPUs less %d: %d on this machine", -n, instances)})
		default:
			instances = n
		}
	}
	cluster := mode == "cluster"
	if cluster {
		notes = append(notes, Finding{Pos: pos("exec_mode"), Setting: raw("exec_mode") + fmt.Sprintf(" (%d instances)", instances), Kind: Approx,
			Note: "cluster mode runs the instances as workers of Node's cluster module sharing one port, which corral does not do: " +
				"imported as one process; fork the workers in the program (node:cluster), or run fork-mode instances on ports of their own"})
		instances = 1
	}

	// Restarts.
	policy := "always"
	if v, ok := app.vals["autorestart"]; ok && v == false {
		policy = "never"
	}
	if v, ok := app.vals["stop_exit_codes"]; ok && policy == "always" {
		codes, _ := pmWords(v)
		if len(codes) == 1 && codes[0] == "0" {
			policy = "on-failure"
		} else {
			notes = append(notes, Finding{Pos: pos("stop_exit_codes"), Setting: raw("stop_exit_codes"), Kind: Approx,
				Note: "corral restarts after every exit (policy always) or every exit but 0 (on-failure): written as always"})
		}
	}
	maxRestarts := pmMaxRestarts
	if v, ok := app.vals["max_restarts"].(float64); ok {
		maxRestarts = max(0, int(v))
	}
	minUptime := pmMinUptime
	if v, ok := app.vals["min_uptime"]; ok {
		d, err := pmDuration(v)
		if err != nil {
			return &ParseError{pos("min_uptime"), "min_uptime: " + err.Error()}
		}
		minUptime = d
	}
	rs := Restart{Policy: policy}
	backoff, maxBackoff := time.Duration(0), time.Duration(0)
	if v, ok := app.vals["restart_delay"]; ok {
		d, err := pmMillis(v)
		if err != nil {
			return &ParseError{pos("restart_delay"), "restart_delay: " + err.Error()}
		}
		backoff, maxBackoff = d, d
	}
	if v, ok := app.vals["exp_backoff_restart_delay"]; ok {
		d, err := pmMillis(v)
		if err != nil {
			return &ParseError{pos("exp_backoff_restart_delay"), "exp_backoff_restart_delay: " + err.Error()}
		}
		backoff, maxBackoff = d, max(d, pmExpCap)
		notes = append(notes, Finding{Pos: pos("exp_backoff_restart_delay"), Setting: raw("exp_backoff_restart_delay"), Kind: Approx,
			Note: fmt.Sprintf("written as backoff = %q, max_backoff = %q: corral doubles the delay per quick failure where PM2 multiplies it by 1.5", fmtDuration(d), fmtDuration(maxBackoff))})
	}
	rs.Backoff, rs.MaxBackoff = fmtDuration(backoff), fmtDuration(maxBackoff)
	burst, window := startLimit(maxRestarts, backoff, max(maxBackoff, backoff), minUptime)
	rs.Burst, rs.Window, rs.StableAfter = &burst, fmtDuration(window), fmtDuration(minUptime)
	if policy == "never" {
		// Nothing is restarted: delays and limits have nothing to act on.
		rs = Restart{Policy: policy}
		for _, k := range []string{"max_restarts", "min_uptime", "restart_delay", "exp_backoff_restart_delay"} {
			if _, ok := app.vals[k]; ok {
				notes = append(notes, Finding{Pos: pos(k), Setting: raw(k), Kind: Moot, Note: "decides only how an app is restarted, and this one has autorestart: false"})
			}
		}
		notes = slices.DeleteFunc(notes, func(f Finding) bool {
			return f.Kind == Approx && strings.HasPrefix(f.Setting, "exp_backoff_restart_delay")
		})
	} else if _, ok := app.vals["max_restarts"]; ok {
		notes = append(notes, Finding{Pos: pos("max_restarts"), Setting: raw("max_restarts"), Kind: Approx,
			Note: fmt.Sprintf("written as restart.burst = %d within window = %q: PM2 gives up after that many restarts in a row of an app up less than min_uptime; "+
				"corral fails the service after burst starts within the window, and re-arms it by itself once they have left it", burst, rs.Window)})
	}
	if _, ok := app.vals["min_uptime"]; ok && policy != "never" {
		notes = append(notes, Finding{Pos: pos("min_uptime"), Setting: raw("min_uptime"), Kind: Approx,
			Note: fmt.Sprintf("written as restart.stable_after = %q: an instance up that long started successfully (its crash resets the backoff)", rs.StableAfter)})
	}

	// Stop: PM2 sends SIGINT, then SIGKILL after kill_timeout.
	grace := pmKillTimeout
	if v, ok := app.vals["kill_timeout"]; ok {
		d, err := pmMillis(v)
		if err != nil {
			return &ParseError{pos("kill_timeout"), "kill_timeout: " + err.Error()}
		}
		grace = min(d, time.Hour)
	}
	stop := Stop{Signal: "INT", Grace: fmtDuration(grace)}

	var memory string
	if v, ok := app.vals["max_memory_restart"]; ok {
		m, err := pmMemory(v)
		if err != nil {
			return &ParseError{pos("max_memory_restart"), "max_memory_restart: " + err.Error()}
		}
		memory = m
		notes = append(notes, Finding{Pos: pos("max_memory_restart"), Setting: raw("max_memory_restart"), Kind: Approx,
			Note: fmt.Sprintf("written as limits.memory = %q with on_limit = \"restart\": corral sums the resident memory of the whole tree and checks it every second, "+
				"PM2 that of the main process every 30 seconds", m)})
	}

	var autostart *bool
	if v, ok := app.vals["autostart"].(bool); ok {
		autostart = &v
	}

	// uid (user) and gid: PM2 looks both up by name, as root only.
	user, group := strings.TrimSpace(str("user")), strings.TrimSpace(str("gid"))
	if _, ok := app.vals["user"]; ok {
		switch _, err := strconv.Atoi(user); {
		case user == "": // nothing to run as
		case err == nil:
			notes = append(notes, Finding{Pos: pos("user"), Setting: raw("user"), Kind: Dropped,
				Note: fmt.Sprintf("PM2 looks uid up as a user name (and finds none named %s); corral's user takes a name too: write user = \"NAME\" with the name of uid %s (getent passwd %s)", user, user, user)})
			user = ""
		default:
			also := ""
			if group != "" {
				also = " and group = " + quote(group)
			}
			notes = append(notes, Finding{Pos: pos("user"), Setting: raw("user"), Kind: Approx,
				Note: fmt.Sprintf("written as user = %s%s: running as another user needs corral's daemon to run as root (PM2 needs root for uid and gid at all); "+
					"where it does not, or where there is no user %s, corral refuses the whole file at load (PM2 refuses only this app)", quote(user), also, user)})
		}
	}
	if _, ok := app.vals["gid"]; ok && user == "" {
		notes = append(notes, Finding{Pos: pos("gid"), Setting: raw("gid"), Kind: Dropped,
			Note: "a group without a user: corral's group needs user (PM2 looks the user up first too): write user = \"NAME\" and group = \"GROUP\""})
		group = ""
	}

	// Every other key is a finding.
	handled := []string{"name", "script", "args", "interpreter", "interpreter_args", "cwd", "env", "instances", "exec_mode",
		"autorestart", "stop_exit_codes", "max_restarts", "min_uptime", "restart_delay", "exp_backoff_restart_delay", "kill_timeout",
		"max_memory_restart", "autostart", "port", "user", "gid", "namespace"}
	for _, k := range app.keys {
		if slices.Contains(handled, k) || strings.HasPrefix(k, "env_") {
			continue
		}
		d, ok := pmKeyNotes[k]
		if !ok {
			d.kind, d.note = Dropped, "not a PM2 app setting the importer knows"
		}
		switch {
		case k == "treekill" && app.vals[k] == false:
			d.kind, d.note = Dropped, "corral always stops the whole tree: the app's detached children are stopped with it"
		case k == "treekill":
			d.kind, d.note = Moot, "corral always stops the whole tree, detached children included"
		case k == "watch" && app.vals[k] == false:
			d.kind, d.note = Moot, "off: nothing to import"
		}
		notes = append(notes, Finding{Pos: pos(k), Setting: raw(k), Kind: d.kind, Note: d.note})
	}

	instVar := "NODE_APP_INSTANCE"
	if v := str("instance_var"); v != "" {
		instVar = v
	}
	incVar := str("increment_var")
	for i := 0; i < instances; i++ {
		s := &Service{Origin: Pos{disp, app.line}, From: "app " + strconv.Quote(name), Command: slices.Clone(argv), Dir: r.dir(dir),
			User: user, Group: group, Restart: rs, Stop: stop, Memory: memory, Autostart: autostart}
		if !lineKnown && app.line == 0 {
			s.Origin = Pos{disp, 0}
		}
		s.Env = slices.Clone(env)
		if instances > 1 {
			s.From += fmt.Sprintf(", instance %d of %d", i, instances)
			s.setEnv(instVar, strconv.Itoa(i), "PM2's instance number")
			if incVar != "" {
				basev := 0
				for _, e := range env {
					if e.Key == incVar {
						basev, _ = strconv.Atoi(e.Value)
					}
				}
				s.setEnv(incVar, strconv.Itoa(basev+i), "increment_var: the base value + the instance number")
			}
		}
		for _, f := range notes {
			f.Service = s.Name
			s.Findings = append(s.Findings, f)
		}
		svcName := name
		if instances > 1 {
			svcName = name + "-" + strconv.Itoa(i)
		}
		r.addService(s, svcName)
		if ns := strings.TrimSpace(str("namespace")); ns != "" {
			i := slices.IndexFunc(*spaces, func(p *pmSpace) bool { return p.name == ns })
			if i < 0 {
				*spaces = append(*spaces, &pmSpace{name: ns, pos: pos("namespace")})
				i = len(*spaces) - 1
			}
			(*spaces)[i].members = append((*spaces)[i].members, s.Name)
		}
	}
	return nil
}

func setEnvVar(env []EnvVar, k, v, c string) []EnvVar {
	for i := range env {
		if env[i].Key == k {
			env[i].Value, env[i].Comment = v, c
			return env
		}
	}
	return append(env, EnvVar{Key: k, Value: v, Comment: c})
}

// pmGuessInterpreter decides as PM2 does for a script without a known
// extension: a binary runs by itself, any other file with node; a name
// that is no file of the app (npm, a program of PATH) runs by itself.
func pmGuessInterpreter(script, dir string) string {
	p := script
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	f, err := os.Open(p)
	if err != nil {
		return "none"
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	if bytes.IndexByte(head[:n], 0) >= 0 {
		return "none"
	}
	return "node"
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// pmMillis reads a number of milliseconds.
func pmMillis(v any) (time.Duration, error) {
	switch x := v.(type) {
	case float64:
		if x < 0 {
			return 0, fmt.Errorf("%v is negative", x)
		}
		return time.Duration(x * float64(time.Millisecond)), nil
	case string:
		n, err := strconv.ParseFloat(x, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of milliseconds", x)
		}
		return time.Duration(n * float64(time.Millisecond)), nil
	}
	return 0, fmt.Errorf("%v is not a number of milliseconds", v)
}

var pmDurationRE = regexp.MustCompile(`^(\d+)(h|m|s)?$`)

// pmDuration reads min_uptime: milliseconds, or "30s", "5m", "1h".
func pmDuration(v any) (time.Duration, error) {
	if s, ok := v.(string); ok {
		m := pmDurationRE.FindStringSubmatch(strings.TrimSpace(s))
		if m == nil {
			return 0, fmt.Errorf("%q is not milliseconds or a number with h, m or s", s)
		}
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[m[2]]
		return time.Duration(n) * unit, nil
	}
	return pmMillis(v)
}

var pmMemoryRE = regexp.MustCompile(`^(\d+)\s*([KMG])?B?$`)

// pmMemory turns max_memory_restart (bytes, or K, M, G: PM2 counts them in
// 1024s) into a corral size.
func pmMemory(v any) (string, error) {
	s := strings.ToUpper(strings.TrimSpace(pmString(v)))
	m := pmMemoryRE.FindStringSubmatch(s)
	if m == nil {
		return "", fmt.Errorf("%q is not a size (PM2 takes a number of bytes, or a number with K, M or G)", s)
	}
	if m[2] == "" {
		return m[1], nil
	}
	return m[1] + m[2] + "iB", nil
}
