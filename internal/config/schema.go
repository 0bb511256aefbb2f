package config

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// The schema of corral.toml as its users see it: what each key holds, in
// their words, so that a value of the wrong type is reported as
// `services.web.ready: expected a table ({ http = "..." }), found a list`
// rather than in the TOML library's terms; and which keys each table has,
// for "did you mean" hints that only name keys of the table at hand.
// TestSchemaMatchesRaw keeps it in step with the raw structs below.

type kind int

const (
	kString  kind = iota
	kBool         // true or false
	kInt          // an integer
	kNumber       // an integer or a float
	kSize         // a string ("24GiB") or an integer (bytes)
	kStrings      // a list of strings
	kTable        // a table with the keys in node.keys, or any keys of node.each
	// Keys that take more than one shape, decoded as any and checked here
	// element by element (an element's path part is "#N", 0-based).
	kPaths    // a string or a list of strings (include)
	kProbes   // a table with node.keys, or a list of such tables (ready)
	kEnvFiles // a string, a table with node.keys, or a list of strings and such tables (env_file)
	kEnvFile  // one element of env_file: a string or a table with node.keys
)

type node struct {
	kind kind
	what string           // what it holds, as an error message says it
	keys map[string]*node // a table's fixed keys
	each *node            // a table whose keys are names (services, env, profiles)
}

// flex reports whether n takes several shapes (decoded as any): the keys
// under it are checked by shape, not by the decoder.
func (n *node) flex() bool {
	return n.kind == kPaths || n.kind == kProbes || n.kind == kEnvFiles || n.kind == kEnvFile
}

// hasKeys reports whether n is a table (or may be one) with fixed keys or names.
func (n *node) hasKeys() bool {
	return n.kind == kTable || n.kind == kProbes || n.kind == kEnvFiles || n.kind == kEnvFile
}

// element returns the node of one element of a list-shaped flex node.
func (n *node) element() *node {
	switch n.kind {
	case kProbes:
		return &node{kind: kTable, what: `a table ({ http = "..." })`, keys: n.keys}
	case kEnvFiles:
		return &node{kind: kEnvFile, what: `a path (".env") or a table ({ path = ".env.local", optional = true })`, keys: n.keys}
	case kPaths:
		return pathNode
	}
	return nil
}

// isElem reports whether a path part names a list element ("#N").
func isElem(k string) bool { return strings.HasPrefix(k, "#") }

// elemIndex is N of a path part "#N".
func elemIndex(k string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(k, "#"))
	return n
}

// keyString writes a key path as error messages show it:
// services.web.ready[1].timeout.
func keyString(path []string) string {
	var b strings.Builder
	for i, k := range path {
		switch {
		case isElem(k):
			fmt.Fprintf(&b, "[%d]", elemIndex(k))
		case i > 0:
			b.WriteString("." + k)
		default:
			b.WriteString(k)
		}
	}
	return b.String()
}

func str(what string) *node { return &node{kind: kString, what: what} }

var (
	durationNode = str(`a duration string ("10s")`)
	pathNode     = str("a string (a path)")
	argvNode     = &node{kind: kStrings, what: `a list of strings (["program", "arg"])`}
	limitsNode   = &node{kind: kTable, what: `a table ({ processes = 64, memory = "24GiB" })`, keys: map[string]*node{
		"processes":  {kind: kInt, what: "an integer (a number of processes)"},
		"memory":     {kind: kSize, what: `a size ("24GiB") or a number of bytes`},
		"fork_rate":  {kind: kNumber, what: "a number (new processes per second)"},
		"gpu_memory": {kind: kSize, what: `a size ("20GiB") or a number of bytes`},
	}}
	logsNode = &node{kind: kTable, what: `a table ({ max_size = "10MB", keep = 3, compress = true })`, keys: map[string]*node{
		"max_size": {kind: kSize, what: `a size ("10MB") or a number of bytes`},
		"keep":     {kind: kInt, what: "an integer (rotated copies kept)"},
		"compress": {kind: kBool, what: "true or false"},
		"lines":    {kind: kInt, what: "an integer (lines kept in memory)"},
		"memory":   {kind: kSize, what: `a size ("1MiB") or a number of bytes`},
	}}
	probeKeys = map[string]*node{
		"http":     str(`a string (a URL: "http://127.0.0.1:7860/")`),
		"body":     str("a string (a regular expression)"),
		"tcp":      str(`a string ("host:port")`),
		"exec":     argvNode,
		"log":      str("a string (a regular expression)"),
		"timeout":  durationNode,
		"interval": durationNode,
		"failures": {kind: kInt, what: "an integer"},
	}
	serviceNode = &node{kind: kTable, what: `a table ([services.NAME] with command = ["program", "arg"])`, keys: map[string]*node{
		"preset":       str(`a string ("a1111", "forge", "comfyui", "postgres", "redis", "ollama", "vllm" or "llamacpp")`),
		"command":      argvNode,
		"shell":        str("a string (a command line)"),
		"dir":          pathNode,
		"env":          {kind: kTable, what: `a table of strings ({ NAME = "value" })`, each: str(`a string (env values are strings: write "1", not 1)`)},
		"autostart":    {kind: kBool, what: "true or false"},
		"after":        {kind: kStrings, what: `a list of service names (["db"])`},
		"lifetime":     str(`a string ("leader", "tree" or "handover")`),
		"pidfile":      pathNode,
		"restart_file": pathNode,
		"stdin":        str(`a string ("null" or "inherit")`),
		"port":         {kind: kInt, what: "an integer (a port number)"},
		"profiles":     {kind: kTable, what: `a table of argument lists ({ guarded = ["--medvram"] })`, each: &node{kind: kStrings, what: `a list of strings (["--medvram"])`}},
		"ready":        {kind: kProbes, what: `a table ({ http = "..." }) or a list of them ([{ http = "..." }, { log = "..." }])`, keys: probeKeys},
		"health":       {kind: kTable, what: `a table ({ http = "...", interval = "10s" })`, keys: probeKeys},
		"restart": {kind: kTable, what: `a table ({ policy = "on-failure" })`, keys: map[string]*node{
			"policy":       str(`a string ("always", "on-failure" or "never")`),
			"backoff":      durationNode,
			"max_backoff":  durationNode,
			"jitter":       {kind: kNumber, what: "a number (0.2)"},
			"burst":        {kind: kInt, what: "an integer"},
			"window":       durationNode,
			"stable_after": durationNode,
		}},
		"stop": {kind: kTable, what: `a table ({ signal = "TERM", grace = "10s" })`, keys: map[string]*node{
			"hook":   str(`a string ("POST http://host/path" or "none")`),
			"signal": str(`a string ("TERM", "INT", ...)`),
			"grace":  durationNode,
		}},
		"limits":   limitsNode,
		"on_limit": str(`a string ("warn", "restart", "stop" or "freeze")`),
		"logs":     logsNode,
		"user":     str(`a string (a user name: "postgres")`),
		"group":    str(`a string (a group name: "postgres")`),
		"env_file": {kind: kEnvFiles, what: `a path (".env"), a table ({ path = ".env.local", optional = true }) or a list of them`, keys: map[string]*node{
			"path":     pathNode,
			"optional": {kind: kBool, what: "true or false"},
		}},
		"umask": str(`a string of octal digits ("027")`),
		"nice":  {kind: kInt, what: "an integer from -20 to 19"},
	}}
	schema = &node{kind: kTable, keys: map[string]*node{
		"corral": {kind: kTable, what: "a table ([corral])", keys: map[string]*node{
			"containment":      str(`a string ("auto", "cgroup" or "pgroup")`),
			"shutdown_timeout": durationNode,
			"watch_interval":   durationNode,
			"leak_sweep":       durationNode,
			"bundle_cooldown":  durationNode,
			"http":             str(`a string ("127.0.0.1:PORT")`),
			"limits":           limitsNode,
			"on_limit":         str(`a string ("warn" or "stop")`),
			"logs":             logsNode,
		}},
		"services": {kind: kTable, what: "a table of services ([services.NAME])", each: serviceNode},
		"include":  {kind: kPaths, what: `a list of paths or globs (["conf.d/*.toml"])`},
		"groups":   {kind: kTable, what: `a table of service lists ({ sd = ["webui", "comfyui"] })`, each: &node{kind: kStrings, what: `a list of service names (["webui", "comfyui"])`}},
	}}
)

// aliases are names other supervisors and tools use for a key of ours.
var aliases = map[string]string{
	"cmd": "command", "argv": "command", "args": "command", "exec": "command",
	"cwd": "dir", "workdir": "dir", "working_dir": "dir", "directory": "dir",
	"environment": "env", "depends_on": "after", "requires": "after",
	"autorestart": "restart", "readiness": "ready", "healthcheck": "health",
	"env_files": "env_file", "envfile": "env_file", "environment_file": "env_file", "environmentfile": "env_file", "dotenv": "env_file",
	"uid": "user", "run_as": "user", "runas": "user", "gid": "group", "priority": "nice", "includes": "include",
}

// child returns the node of key k in table n, or nil.
func (n *node) child(k string) *node {
	if n != nil && n.flex() && n.kind != kEnvFile && isElem(k) {
		return n.element()
	}
	if n == nil || !n.hasKeys() {
		return nil
	}
	if n.each != nil {
		return n.each
	}
	return n.keys[k]
}

// nodeAt returns the schema node of a key path, or nil if the schema has
// no such key.
func nodeAt(path []string) *node {
	n := schema
	for _, k := range path {
		if n = n.child(k); n == nil {
			return nil
		}
	}
	return n
}

// unknownKey describes an unknown key: the shortest part of path that the
// schema does not know, and a hint at what was meant (or "").
func unknownKey(path []string) (prefix []string, hint string) {
	n := schema
	for i, k := range path {
		c := n.child(k)
		if c == nil {
			return path[:i+1], keyHint(path[:i], n, k)
		}
		n = c
	}
	return path, ""
}

// keyHint suggests what k, an unknown key of the table at parent (node
// n), should be: a key of that table it resembles, the key another tool
// calls k, or the table where k belongs.
func keyHint(parent []string, n *node, k string) string {
	if !n.hasKeys() || n.each != nil {
		return ""
	}
	names := make([]string, 0, len(n.keys))
	for name := range n.keys {
		names = append(names, name)
	}
	sort.Strings(names)
	if h := DidYouMean(k, names); h != "" {
		return h
	}
	if a, ok := aliases[strings.ToLower(k)]; ok && n.keys[a] != nil {
		return fmt.Sprintf(" (did you mean %q?)", a)
	}
	// A key of another table: say where it goes.
	var where []string
	var walk func(path []string, m *node)
	walk = func(path []string, m *node) {
		if !m.hasKeys() {
			return
		}
		if m.each != nil {
			walk(append(path, "NAME"), m.each)
			return
		}
		if m.keys[k] != nil && !slices.Equal(path, parentPattern(parent)) {
			where = append(where, tableName(path))
		}
		for _, name := range sortedKeys(m.keys) {
			walk(append(slices.Clone(path), name), m.keys[name])
		}
	}
	walk(nil, schema)
	switch len(where) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf(" (%s belongs in %s)", k, where[0])
	}
	return fmt.Sprintf(" (%s belongs in %s)", k, strings.Join(where[:len(where)-1], ", ")+" or "+where[len(where)-1])
}

// parentPattern replaces the names in a path with NAME, as walk spells them.
func parentPattern(path []string) []string {
	out := slices.Clone(path)
	if len(out) >= 2 && out[0] == "services" {
		out[1] = "NAME"
	}
	return out
}

// tableName writes a schema path the way a user writes the table:
// [corral], [services.NAME], ready = { ... } of [services.NAME].
func tableName(path []string) string {
	if len(path) <= 2 {
		return "[" + strings.Join(path, ".") + "]"
	}
	return fmt.Sprintf("%s = { ... } of [%s]", path[len(path)-1], strings.Join(path[:len(path)-1], "."))
}

func sortedKeys(m map[string]*node) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// shapeErrors checks the type of every known key of a document that
// parsed as TOML, and reports each wrong one in the user's words at the
// position of its value. It returns the keys the schema does not know.
func (p *parser) shapeErrors() (unknown [][]string) {
	var doc map[string]any
	if _, err := toml.Decode(p.src, &doc); err != nil {
		return nil // Parse reports it
	}
	p.shape(nil, schema, doc, &unknown)
	return unknown
}

func (p *parser) shape(path []string, n *node, v any, unknown *[][]string) {
	if problem := mismatch(n, v); problem != "" {
		line, col := locate(p.src, path)
		if len(path) == 0 || !isElem(path[len(path)-1]) {
			line, col = valueAt(p.src, line, col)
		}
		p.errs = append(p.errs, &Error{File: p.path, Line: line, Col: col, Key: keyString(path),
			Msg: fmt.Sprintf("expected %s, found %s", n.what, problem)})
		return
	}
	if n.flex() {
		if list, ok := asList(v); ok && n.kind != kEnvFile {
			for i, e := range list {
				p.shape(append(slices.Clone(path), "#"+strconv.Itoa(i)), n.element(), e, unknown)
			}
			return
		}
	}
	t, ok := v.(map[string]any)
	if !ok || !n.hasKeys() {
		return
	}
	for _, k := range sortedAny(t) {
		if c := n.child(k); c != nil {
			p.shape(append(slices.Clone(path), k), c, t[k], unknown)
		} else {
			*unknown = append(*unknown, append(slices.Clone(path), k))
		}
	}
}

// mismatch says what v is when it is not what n holds, or "".
func mismatch(n *node, v any) string {
	switch n.kind {
	case kString:
		if _, ok := v.(string); ok {
			return ""
		}
	case kBool:
		if _, ok := v.(bool); ok {
			return ""
		}
	case kInt:
		if _, ok := v.(int64); ok {
			return ""
		}
	case kNumber:
		switch v.(type) {
		case int64, float64:
			return ""
		}
	case kSize:
		switch v.(type) {
		case int64, string:
			return ""
		}
	case kTable:
		if _, ok := v.(map[string]any); ok {
			return ""
		}
	case kPaths:
		if _, ok := v.(string); ok {
			return ""
		}
		if _, ok := v.([]any); ok {
			return mismatch(&node{kind: kStrings}, v)
		}
	case kProbes, kEnvFiles:
		if _, ok := v.(map[string]any); ok {
			return ""
		}
		if _, ok := v.(string); ok && n.kind == kEnvFiles {
			return ""
		}
		if list, ok := asList(v); ok {
			if len(list) == 0 && n.kind == kProbes {
				return "an empty list"
			}
			return "" // each element is checked on its own
		}
	case kEnvFile:
		switch v.(type) {
		case string, map[string]any:
			return ""
		}
	case kStrings:
		list, ok := v.([]any)
		if !ok {
			break
		}
		for _, e := range list {
			if _, ok := e.(string); !ok {
				return "a list holding " + describe(e)
			}
		}
		return ""
	}
	return describe(v)
}

// describe names a TOML value's type as a user would, with the value when
// it is short.
func describe(v any) string {
	show := func(s string) string {
		if len(s) > 24 {
			return ""
		}
		return " (" + s + ")"
	}
	switch x := v.(type) {
	case string:
		return "a string" + show(fmt.Sprintf("%q", x))
	case int64:
		return "an integer" + show(fmt.Sprint(x))
	case float64:
		return "a number" + show(fmt.Sprint(x))
	case bool:
		return "a boolean" + show(fmt.Sprint(x))
	case []any:
		return "a list"
	case []map[string]any:
		return "a list of tables ([[...]])"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date or time"
	}
	return fmt.Sprintf("a %T", v)
}

// asList returns the elements of a TOML list, of values or of tables.
func asList(v any) ([]any, bool) {
	switch l := v.(type) {
	case []any:
		return l, true
	case []map[string]any:
		out := make([]any, len(l))
		for i, t := range l {
			out[i] = t
		}
		return out, true
	}
	return nil, false
}

func sortedAny(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// valueAt moves a key's position (line, col) to its value: past the `=`
// that follows the key on its line. A table header stays where it is.
func valueAt(src string, line, col int) (int, int) {
	lines := strings.Split(src, "\n")
	if line < 1 || line > len(lines) || col < 1 || col > len(lines[line-1])+1 {
		return line, col
	}
	text := stripComment(lines[line-1])
	if col-1 >= len(text) || strings.HasPrefix(strings.TrimSpace(text), "[") && col == len(text)-len(strings.TrimLeft(text, " \t"))+1 {
		return line, col
	}
	rest := text[col-1:]
	eq := strings.IndexByte(rest, '=')
	if eq < 0 {
		return line, col
	}
	after := rest[eq+1:]
	skip := len(after) - len(strings.TrimLeft(after, " \t"))
	if skip == len(after) {
		return line, col // the value starts on a later line
	}
	return line, col + eq + 1 + skip
}
