package importer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Format names a source format.
type Format string

const (
	Supervisord Format = "supervisord"
	Procfile    Format = "procfile"
	PM2         Format = "pm2"
)

// Formats lists the formats in the order the CLI names them.
var Formats = []Format{Supervisord, Procfile, PM2}

// ParseFormat parses a format name as the CLI takes it.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case Supervisord, Procfile, PM2:
		return f, nil
	case "supervisor":
		return Supervisord, nil
	}
	return "", fmt.Errorf("importer: unknown format %q (want supervisord, procfile or pm2)", s)
}

// Detect guesses the format from a file's name: Procfile and Procfile.*;
// *.conf and *.ini; PM2's ecosystem*.{js,cjs,mjs,json,yaml,yml},
// *.config.js, and any other .json, .yaml or .yml.
func Detect(path string) (Format, bool) {
	base := strings.ToLower(filepath.Base(path))
	ext := filepath.Ext(base)
	switch {
	case base == "procfile" || strings.HasPrefix(base, "procfile."):
		return Procfile, true
	case ext == ".conf" || ext == ".ini" || strings.HasPrefix(base, "supervisord"):
		return Supervisord, true
	case strings.HasPrefix(base, "ecosystem") || strings.HasSuffix(base, ".config.js") || strings.HasSuffix(base, ".config.cjs"),
		ext == ".json", ext == ".yaml", ext == ".yml":
		return PM2, true
	}
	return "", false
}

// Import reads path in format f.
func Import(ctx context.Context, f Format, path string, o Options) (*Result, error) {
	switch f {
	case Supervisord:
		return ImportSupervisord(path, o)
	case Procfile:
		return ImportProcfile(path, o)
	case PM2:
		return ImportPM2(ctx, path, o)
	}
	return nil, fmt.Errorf("importer: unknown format %q", f)
}

// Options tune an import. The zero value imports for a corral.toml in the
// current directory, reading this process's environment.
type Options struct {
	// OutDir is the directory of the corral.toml to be written: corral
	// resolves relative paths there, so a working directory inside it is
	// written relative to it. "" is the current directory.
	OutDir string
	// LookupEnv reads the environment of the import (supervisord's
	// %(ENV_X)s, dotenv references); nil is os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Hostname is supervisord's %(host_node_name)s; nil is os.Hostname.
	Hostname func() string
	// NumCPU is what PM2's instances = "max" means; 0 is runtime.NumCPU.
	NumCPU int
	// Node is the node binary that evaluates ecosystem.config.js; "" looks
	// it up in PATH.
	Node string
	// PM2Env selects PM2's env_NAME block, as `pm2 start --env NAME` does.
	PM2Env string
	// NodeTimeout bounds the evaluation of a JavaScript ecosystem file; 0
	// is 30s.
	NodeTimeout time.Duration
}

func (o *Options) lookupEnv(k string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv(k)
	}
	return os.LookupEnv(k)
}

func (o *Options) hostname() string {
	if o.Hostname != nil {
		return o.Hostname()
	}
	h, _ := os.Hostname()
	return h
}

func (o *Options) numCPU() int {
	if o.NumCPU > 0 {
		return o.NumCPU
	}
	return runtime.NumCPU()
}

func (o *Options) outDir() string {
	if o.OutDir != "" {
		if abs, err := filepath.Abs(o.OutDir); err == nil {
			return abs
		}
		return o.OutDir
	}
	wd, _ := os.Getwd()
	return wd
}

// Pos is where a setting came from. Line 0 means the file as a whole.
type Pos struct {
	File string // as displayed: relative to the output directory where it is inside it
	Line int
}

func (p Pos) String() string {
	if p.Line > 0 {
		return p.File + ":" + strconv.Itoa(p.Line)
	}
	return p.File
}

// Kind classifies a finding.
type Kind int

const (
	// Dropped: corral has no equivalent; the setting is not in corral.toml.
	Dropped Kind = iota
	// Approx: mapped to the nearest corral setting, which behaves
	// differently in a way the note says.
	Approx
	// Moot: not needed, because corral does it by itself (or has no such
	// thing to configure).
	Moot
)

func (k Kind) String() string {
	return [...]string{"not imported", "approximated", "not needed"}[k]
}

// Finding is one setting that did not map one to one.
type Finding struct {
	Pos     Pos
	Service string // "" for a setting of the file as a whole
	Setting string // the setting as the source wrote it: `user = www-data`
	Kind    Kind
	Note    string // why, and what to do instead
}

func (f Finding) String() string {
	s := f.Pos.String() + ": "
	if f.Service != "" {
		s += f.Service + ": "
	}
	return s + f.local()[len(f.Pos.String())+2:]
}

// local is the finding without its service, for a comment under it. A
// setting that spans lines (a continued INI value) is shown on one.
func (f Finding) local() string {
	return f.Pos.String() + ": " + newlines.ReplaceAllString(f.Setting, " ") + ": " + f.Kind.String() + ": " + f.Note
}

var newlines = regexp.MustCompile(`[ \t]*\r?\n[ \t]*`)

// EnvVar is one variable of a service's environment.
type EnvVar struct {
	Key, Value string
	Comment    string // written after the value
}

// Restart is a service's restart table; empty fields are not written.
type Restart struct {
	Policy      string
	Backoff     string
	MaxBackoff  string
	Burst       *int
	Window      string
	StableAfter string
}

// Stop is a service's stop table; empty fields are not written.
type Stop struct {
	Signal string
	Grace  string
}

// Service is one imported service.
type Service struct {
	Name   string
	Origin Pos
	From   string // what it was in the source: "[program:web]", "process type web"
	// Command is an argv; Shell a command line for /bin/sh -c. One is set.
	Command []string
	Shell   string
	Dir     string // as written: relative to the output directory where inside it
	// User and Group are user = and group = (Group only with User);
	// Umask is umask = as octal digits ("027").
	User, Group, Umask string
	// EnvFile is env_file = (a path as written: relative to the output
	// directory where inside it); Env wins over its variables.
	EnvFile string
	Env     []EnvVar
	// Autostart is written when set.
	Autostart *bool
	After     []string
	Restart   Restart
	Stop      Stop
	Memory    string // limits.memory, with on_limit = "restart"
	// Notes are comments written above the service's keys.
	Notes    []string
	Findings []Finding
}

func (s *Service) find(pos Pos, kind Kind, setting, note string, args ...any) {
	s.Findings = append(s.Findings, Finding{Pos: pos, Service: s.Name, Setting: setting, Kind: kind, Note: fmt.Sprintf(note, args...)})
}

func (s *Service) setEnv(k, v, comment string) {
	for i := range s.Env {
		if s.Env[i].Key == k {
			s.Env[i].Value, s.Env[i].Comment = v, comment
			return
		}
	}
	s.Env = append(s.Env, EnvVar{Key: k, Value: v, Comment: comment})
}

// Group is one entry of the top-level groups = { NAME = [...] } table.
type Group struct {
	Name    string
	Origin  Pos
	From    string // what it was in the source: "[group:shop]", "namespace \"media\""
	Members []string
}

// Result is an imported configuration.
type Result struct {
	Format   Format
	Sources  []string // the files read, displayed as in Pos
	Services []*Service
	Groups   []*Group
	// Findings are the settings of the file as a whole; each service holds
	// its own.
	Findings []Finding
	outDir   string
}

func (r *Result) find(pos Pos, kind Kind, setting, note string, args ...any) {
	r.Findings = append(r.Findings, Finding{Pos: pos, Setting: setting, Kind: kind, Note: fmt.Sprintf(note, args...)})
}

// AllFindings returns the file's findings, then every service's, in order.
func (r *Result) AllFindings() []Finding {
	all := append([]Finding(nil), r.Findings...)
	for _, s := range r.Services {
		all = append(all, s.Findings...)
	}
	return all
}

// display names a file as positions show it: relative to the output
// directory when inside it, else as an absolute path.
func (r *Result) display(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if rel, ok := within(r.outDir, abs); ok {
		return rel
	}
	return abs
}

// dir writes a working directory for corral.toml: "" when it is the
// output directory itself (corral's default), relative when inside it.
func (r *Result) dir(path string) string {
	if path == "" {
		return ""
	}
	abs := filepath.Clean(path)
	if !filepath.IsAbs(abs) {
		return path // e.g. ~/app: corral expands it
	}
	if rel, ok := within(r.outDir, abs); ok {
		if rel == "." {
			return ""
		}
		return rel
	}
	return abs
}

func within(dir, path string) (string, bool) {
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

var badNameChar = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// maxName is corral's limit on service names (a name is part of a log
// file's name).
const maxName = 64

// addService names s uniquely within r, as corral's names allow, and adds
// it. A name that had to change is a finding.
func (r *Result) addService(s *Service, raw string) {
	name := cleanName(raw, "service")
	base := name
	for i := 2; r.service(name) != nil; i++ {
		suffix := "-" + strconv.Itoa(i)
		name = base[:min(len(base), maxName-len(suffix))] + suffix
	}
	s.Name = name
	for i := range s.Findings {
		s.Findings[i].Service = name
	}
	if name != raw {
		s.find(s.Origin, Approx, "name "+strconv.Quote(raw), "renamed to %q: corral's service names use letters, digits, '.', '_' and '-', start with a letter or digit, are at most %d characters long and are unique", name, maxName)
	}
	r.Services = append(r.Services, s)
}

// addGroup adds a group of the given services (duplicates dropped, in
// order), named as corral's names allow and unique among the groups; a
// name that had to change is a finding. A group of no service is not
// written (corral refuses an empty group).
func (r *Result) addGroup(raw string, origin Pos, from string, members []string) *Group {
	var m []string
	for _, s := range members {
		if !slices.Contains(m, s) {
			m = append(m, s)
		}
	}
	if len(m) == 0 {
		return nil
	}
	name := cleanName(raw, "group")
	base := name
	for i := 2; r.group(name) != nil; i++ {
		suffix := "-" + strconv.Itoa(i)
		name = base[:min(len(base), maxName-len(suffix))] + suffix
	}
	if name != raw {
		r.find(origin, Approx, from, "the group is named %q: corral's group names follow the rules of service names "+
			"(letters, digits, '.', '_' and '-', starting with a letter or digit, at most %d characters) and are unique", name, maxName)
	}
	g := &Group{Name: name, Origin: origin, From: from, Members: m}
	r.Groups = append(r.Groups, g)
	return g
}

func (r *Result) group(name string) *Group {
	for _, g := range r.Groups {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// cleanName makes raw a name corral accepts (empty: def).
func cleanName(raw, def string) string {
	name := badNameChar.ReplaceAllString(raw, "-")
	name = strings.TrimLeft(name, "._-")
	if name == "" {
		name = def
	}
	if len(name) > maxName {
		name = name[:maxName]
	}
	return name
}

// path writes a file's path for corral.toml: relative to the output
// directory when inside it, else absolute.
func (r *Result) path(abs string) string {
	if rel, ok := within(r.outDir, abs); ok {
		return rel
	}
	return filepath.ToSlash(abs)
}

func (r *Result) service(name string) *Service {
	for _, s := range r.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// ParseError is input that cannot be read: the file and line, and why.
type ParseError struct {
	Pos Pos
	Msg string
}

func (e *ParseError) Error() string { return e.Pos.String() + ": " + e.Msg }

// seconds writes a whole number of seconds as a corral duration.
func seconds(n int) string { return fmtDuration(time.Duration(n) * time.Second) }

// fmtDuration writes d in the largest unit that divides it exactly: "1s",
// "90s", "2m", "1500ms".
func fmtDuration(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if d >= u.d && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	if d == 0 {
		return "0s"
	}
	return d.String()
}
