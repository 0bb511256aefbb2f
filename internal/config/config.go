package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/corral-sh/corral/internal/restart"
)

// File is a validated configuration.
type File struct {
	Path        string
	Containment string // "", "cgroup" or "pgroup"
	// ShutdownTimeout bounds a verified shutdown of all services.
	ShutdownTimeout time.Duration
	// Watch configures the watchdog over all services.
	Watch Watch
	// HTTP is where the daemon serves its dashboard and metrics
	// ("127.0.0.1:PORT"); "" for nowhere (the default: off).
	HTTP string
	// Logs are [corral]'s logs keys: every service's defaults, and
	// daemon.log's rotation (LogsOf, DaemonLogs).
	Logs     LogSettings
	Services map[string]*Service
	// Groups name lists of services (groups = { sd = ["webui", "comfyui"] }),
	// which the CLI takes as @NAME wherever it takes service names.
	Groups map[string][]string
	// Includes are the files read besides Path (include = [...]), in the
	// order read.
	Includes []string
	// Digest is the SHA-256 (hex) of the file's bytes (and of the files it
	// includes): the daemon reports it, so that corral up can tell a file
	// changed since it was read.
	Digest string
}

// Digest returns the SHA-256 (hex) of a configuration's bytes, as
// File.Digest has it.
func Digest(src []byte) string { return digest(string(src)) }

func digest(src string) string {
	sum := sha256.Sum256([]byte(src))
	return hex.EncodeToString(sum[:])
}

// Limits bound one service's whole tree (or, globally, all services).
// Zero means no limit.
type Limits struct {
	Processes int     // live members of the tree
	Memory    int64   // bytes of resident memory summed over the tree
	ForkRate  float64 // new members per second
	// GPUMemory bounds the GPU memory the members hold (bytes, summed;
	// nvidia-smi's compute apps): a model server's leak shows there, not
	// in its RSS. Where nvidia-smi is missing it is never breached.
	GPUMemory int64
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool {
	return l.Processes == 0 && l.Memory == 0 && l.ForkRate == 0 && l.GPUMemory == 0
}

// OnLimit is what happens when a limit is breached.
type OnLimit string

const (
	LimitWarn    OnLimit = "warn"
	LimitRestart OnLimit = "restart"
	LimitStop    OnLimit = "stop"
	LimitFreeze  OnLimit = "freeze"
)

// Watch configures the watchdog.
type Watch struct {
	Interval       time.Duration // accounting period (default 1s)
	LeakSweep      time.Duration // leak alarm period (default 30s)
	BundleCooldown time.Duration // at most one automatic bundle per reason per cooldown (default 5m)
	Limits         Limits        // over all services together
	OnLimit        OnLimit       // warn or stop (the largest service) for global limits
}

// Names returns the service names in a stable order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Services))
	for n := range f.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lifetime says what ends an instance.
type Lifetime string

const (
	// LifetimeLeader: the instance ends when its first process exits; the
	// rest of its tree is then stopped.
	LifetimeLeader Lifetime = "leader"
	// LifetimeTree: the instance lives while anything is in its container
	// (launchers that start the real server and exit).
	LifetimeTree Lifetime = "tree"
	// LifetimeHandover: like leader, but a main process that exits 0 while
	// its container still holds a process hands over to it (a server that
	// restarts itself by starting its successor, as ComfyUI-Manager does on
	// Windows): the successor becomes the main process once it is ready.
	LifetimeHandover Lifetime = "handover"
)

// Service is one validated service.
type Service struct {
	Name      string
	Preset    string
	Argv      []string // the command to run, shell already applied
	Shell     bool     // Argv runs a shell command line
	Dir       string
	Env       []string // KEY=VALUE, added to corral's own environment
	Autostart bool
	After     []string
	Lifetime  Lifetime
	// PIDFile is where a forking launcher writes its server's pid (absolute;
	// "" for none): that pid, read once the launcher has exited, is the
	// main process, and its death ends the instance.
	PIDFile string
	// RestartFile, when it exists as the main process exits 0, asks for a
	// restart at once (A1111's tmp/restart: the program touches it and
	// exits, expecting its launcher to start it again). Absolute; "" none.
	RestartFile string
	// StdinNull: stdin is the null device (default). false: inherit corral's.
	StdinNull bool
	Profiles  map[string][]string
	Ready     Probe
	Health    Health
	Restart   restart.Policy
	Stop      Stop
	Limits    Limits
	OnLimit   OnLimit
	// RunAs is who the tree runs as (user = / group =, Unix); nil: the
	// daemon's own user.
	RunAs *RunAs
	// EnvFiles are read at each start, in order, below Env (env_file =).
	EnvFiles []EnvFile
	// Umask (umask = "027") and Nice (nice = 10) are set in the first
	// process before its program runs; nil: the daemon's own.
	Umask *uint32
	Nice  *int
	// Logs are its logs keys as given; File.LogsOf resolves them.
	Logs LogSettings
}

// Probe is a check of a service. Every field that is set must pass.
type Probe struct {
	HTTP     string         // URL that must answer 2xx
	Body     *regexp.Regexp // optional: the HTTP body must match
	TCP      string         // host:port that must accept a connection
	Exec     []string       // command that must exit 0
	Log      *regexp.Regexp // a line of output that must appear (readiness only)
	Timeout  time.Duration  // readiness: give up after; health: per check
	Interval time.Duration  // between attempts
	// All, for ready = [ {...}, {...} ], holds the probes that must all
	// pass, each with its own timeout and interval (the fields above are
	// then empty but Timeout, the longest of theirs, and Interval, the
	// shortest).
	All []Probe
}

// IsZero reports whether no check is configured.
func (p Probe) IsZero() bool {
	return p.HTTP == "" && p.TCP == "" && len(p.Exec) == 0 && p.Log == nil && len(p.All) == 0
}

// Checks reports whether p has a check other than the log line (what
// probe.Check runs).
func (p Probe) Checks() bool {
	return p.HTTP != "" || p.TCP != "" || len(p.Exec) > 0 || slices.ContainsFunc(p.All, Probe.Checks)
}

// Health is a liveness probe.
type Health struct {
	Probe
	Failures int // consecutive failures that end the instance
}

// Hook is an HTTP request asking the server to stop itself.
type Hook struct {
	Method string
	URL    string
	// RequiresArg, when set, is a flag without which the server has no such
	// endpoint (a preset's hook; user hooks leave it empty): see HookFor.
	RequiresArg string
}

// Stop says how an instance is stopped.
type Stop struct {
	Hook   *Hook
	Signal syscall.Signal
	Grace  time.Duration
}

// Ports lists the TCP ports that the service's probes name, for the port
// preflight.
func (s *Service) Ports() []int {
	var ports []int
	add := func(hostport string) {
		if _, p, err := net.SplitHostPort(hostport); err == nil {
			if n, err := strconv.Atoi(p); err == nil && !slices.Contains(ports, n) {
				ports = append(ports, n)
			}
		}
	}
	for _, p := range append([]Probe{s.Ready, s.Health.Probe}, s.Ready.All...) {
		if p.HTTP != "" {
			if u, err := url.Parse(p.HTTP); err == nil {
				port := u.Port()
				if port == "" {
					port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
				}
				add(net.JoinHostPort(u.Hostname(), port))
			}
		}
		if p.TCP != "" {
			add(p.TCP)
		}
	}
	return ports
}

// HookFor returns the stop hook for an instance running argv (the result of
// CommandFor), or nil. A preset's hook needs its flag on the instance's
// command line or in COMMANDLINE_ARGS of the service's env (how the WebUI
// itself reads extra flags): AUTOMATIC1111 registers server-stop only with
// --api-server-stop; without it the request gets a 404 and the stop has
// waited for nothing.
func (s *Service) HookFor(argv []string) *Hook {
	h := s.Stop.Hook
	if h == nil || h.RequiresArg == "" {
		return h
	}
	// Whole words only: "--api-server-stop=1" is not the flag.
	has := func(words []string) bool { return slices.Contains(words, h.RequiresArg) }
	// A command line's words; a word quoted whole ('--api-server-stop') is
	// the same word to the shell.
	fields := func(line string) []string {
		ws := strings.Fields(line)
		for i, w := range ws {
			if len(w) >= 2 && (w[0] == '"' || w[0] == '\'') && w[len(w)-1] == w[0] {
				ws[i] = w[1 : len(w)-1]
			}
		}
		return ws
	}
	if has(argv) || s.Shell && len(argv) > 0 && has(fields(argv[len(argv)-1])) {
		return h
	}
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		// Windows environment names ignore case.
		if (k == "COMMANDLINE_ARGS" || runtime.GOOS == "windows" && strings.EqualFold(k, "COMMANDLINE_ARGS")) && has(fields(v)) {
			return h
		}
	}
	return nil
}

// CommandFor returns the argv for an instance started with profile ("" for
// none). A profile's arguments are appended to the command.
func (s *Service) CommandFor(profile string) ([]string, error) {
	argv := slices.Clone(s.Argv)
	if profile == "" {
		return argv, nil
	}
	extra, ok := s.Profiles[profile]
	if !ok {
		names := make([]string, 0, len(s.Profiles))
		for n := range s.Profiles {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) == 0 {
			return nil, fmt.Errorf("config: service %s has no profile %q (it has no profiles; profiles = { NAME = [\"--arg\"] } adds one)", s.Name, profile)
		}
		return nil, fmt.Errorf("config: service %s has no profile %q%s (profiles: %s)", s.Name, profile, DidYouMean(profile, names), strings.Join(names, ", "))
	}
	if s.Shell {
		// The shell command line is the last argument: append quoted words.
		line := argv[len(argv)-1]
		for _, a := range extra {
			line += " " + shellQuote(a)
		}
		argv[len(argv)-1] = line
		return argv, nil
	}
	return append(argv, extra...), nil
}

func shellQuote(s string) string {
	if runtime.GOOS == "windows" {
		if strings.ContainsAny(s, " \t\"") {
			return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
		}
		return s
	}
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Error is one problem in a configuration file.
type Error struct {
	File      string
	Line, Col int
	Key       string
	Msg       string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Col, e.Key, e.Msg)
}

// runBase is where relative paths of a running service resolve: its dir,
// or the config file's directory.
func runBase(base, dir string) string {
	if dir != "" {
		return dir
	}
	return base
}

// Load reads and validates path.
func Load(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, string(src))
}

type rawFile struct {
	Corral   rawDaemon             `toml:"corral"`
	Services map[string]rawService `toml:"services"`
	Include  any                   `toml:"include"` // a path or glob, or a list of them
	Groups   map[string][]string   `toml:"groups"`
}

type rawDaemon struct {
	Containment     string    `toml:"containment"`
	ShutdownTimeout string    `toml:"shutdown_timeout"`
	WatchInterval   string    `toml:"watch_interval"`
	LeakSweep       string    `toml:"leak_sweep"`
	BundleCooldown  string    `toml:"bundle_cooldown"`
	HTTP            string    `toml:"http"`
	Limits          rawLimits `toml:"limits"`
	OnLimit         string    `toml:"on_limit"`
	Logs            *rawLogs  `toml:"logs"`
}

type rawLimits struct {
	Processes int     `toml:"processes"`
	Memory    any     `toml:"memory"`
	ForkRate  float64 `toml:"fork_rate"`
	GPUMemory any     `toml:"gpu_memory"`
}

type rawService struct {
	Preset      string              `toml:"preset"`
	Command     []string            `toml:"command"`
	Shell       string              `toml:"shell"`
	Dir         string              `toml:"dir"`
	Env         map[string]string   `toml:"env"`
	Autostart   *bool               `toml:"autostart"`
	After       []string            `toml:"after"`
	Lifetime    string              `toml:"lifetime"`
	PIDFile     string              `toml:"pidfile"`
	RestartFile string              `toml:"restart_file"`
	Stdin       string              `toml:"stdin"`
	Port        int                 `toml:"port"`
	Profiles    map[string][]string `toml:"profiles"`
	Ready       any                 `toml:"ready"` // a probe table or a list of them
	User        string              `toml:"user"`
	Group       string              `toml:"group"`
	EnvFile     any                 `toml:"env_file"` // a path, a { path, optional } table, or a list of them
	Umask       string              `toml:"umask"`
	Nice        *int                `toml:"nice"`
	Health      *rawProbe           `toml:"health"`
	Restart     *rawRestart         `toml:"restart"`
	Stop        *rawStop            `toml:"stop"`
	Limits      *rawLimits          `toml:"limits"`
	OnLimit     string              `toml:"on_limit"`
	Logs        *rawLogs            `toml:"logs"`
}

type rawProbe struct {
	HTTP     string   `toml:"http"`
	Body     string   `toml:"body"`
	TCP      string   `toml:"tcp"`
	Exec     []string `toml:"exec"`
	Log      string   `toml:"log"`
	Timeout  string   `toml:"timeout"`
	Interval string   `toml:"interval"`
	Failures *int     `toml:"failures"`
}

type rawRestart struct {
	Policy      string   `toml:"policy"`
	Backoff     string   `toml:"backoff"`
	MaxBackoff  string   `toml:"max_backoff"`
	Jitter      *float64 `toml:"jitter"`
	Burst       *int     `toml:"burst"`
	Window      string   `toml:"window"`
	StableAfter string   `toml:"stable_after"`
}

type rawStop struct {
	Hook   string `toml:"hook"`
	Signal string `toml:"signal"`
	Grace  string `toml:"grace"`
}

// knownKeys lists every key, for "did you mean" hints.
var knownKeys = []string{
	"corral", "containment", "shutdown_timeout", "services", "watch_interval", "leak_sweep", "bundle_cooldown",
	"processes", "memory", "fork_rate", "gpu_memory",
	"preset", "command", "shell", "dir", "env", "autostart", "after", "lifetime", "pidfile", "restart_file", "stdin", "port",
	"profiles", "ready", "health", "restart", "stop", "limits", "on_limit",
	"http", "body", "tcp", "exec", "log", "timeout", "interval", "failures",
	"policy", "backoff", "max_backoff", "jitter", "burst", "window", "stable_after",
	"hook", "signal", "grace",
	"include", "groups", "user", "group", "env_file", "path", "optional", "umask", "nice",
}

var decodeErrRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]+)"\): (.*)$`)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// parser collects errors with positions.
type parser struct {
	path string
	src  string
	errs []error
	// hinted has the keys that "did you mean" hints named, by the table
	// of the unknown key: a misspelt command is not also "no command".
	hinted map[string][]string
	// defined reports whether the file defines a key (toml.MetaData's
	// IsDefined); nil for a parser of no file.
	defined func(key ...string) bool
	// extErrs are errors in other files that this one names (an env_file's
	// lines), told after this file's own.
	extErrs []error
}

func (p *parser) errAt(key []string, format string, args ...any) {
	line, col := locate(p.src, key)
	p.errs = append(p.errs, &Error{File: p.path, Line: line, Col: col, Key: keyString(key), Msg: fmt.Sprintf(format, args...)})
}

// unknownKey reports an undecoded key: one error for an unknown key, none
// for what it holds (under [service.x] only "service" is wrong), with a
// hint from the keys of its own table.
func (p *parser) unknownKey(key []string, reported map[string]bool) {
	if len(key) >= 4 && key[0] == "services" && (key[2] == "env" || key[2] == "profiles") {
		return // free-form tables
	}
	unknown, hint := unknownKey(key)
	if reported[strings.Join(unknown, ".")] {
		return
	}
	reported[strings.Join(unknown, ".")] = true
	if len(unknown) == len(key) && hint == "" && nodeAt(key) != nil {
		hint = DidYouMean(key[len(key)-1], knownKeys) // the schema is out of step with rawFile
	}
	if hint != "" {
		if p.hinted == nil {
			p.hinted = map[string][]string{}
		}
		parent := strings.Join(unknown[:len(unknown)-1], ".")
		p.hinted[parent] = append(p.hinted[parent], hint)
	}
	line, col := locate(p.src, key)
	p.errs = append(p.errs, &Error{File: p.path, Line: line, Col: col, Key: keyString(unknown),
		Msg: fmt.Sprintf("unknown key%s; docs/configuration.md lists every key", hint)})
}

// Parse validates src, read from path.
func Parse(path, src string) (*File, error) {
	p, raw, err := decodeFile(path, src)
	if err != nil {
		return nil, err
	}
	f := &File{Path: path, Services: map[string]*Service{}, Digest: digest(src)}
	switch raw.Corral.Containment {
	case "", "auto", "cgroup", "pgroup":
		f.Containment = strings.TrimPrefix(raw.Corral.Containment, "auto")
	default:
		p.errAt([]string{"corral", "containment"}, "unknown containment %q (want auto, cgroup or pgroup)", raw.Corral.Containment)
	}
	f.ShutdownTimeout = p.durationIn([]string{"corral", "shutdown_timeout"}, raw.Corral.ShutdownTimeout, time.Minute, minShutdownTimeout, maxShutdownTimeout, "")
	f.Watch = Watch{
		Interval:       p.durationIn([]string{"corral", "watch_interval"}, raw.Corral.WatchInterval, time.Second, minWatchInterval, maxWatchInterval, ""),
		LeakSweep:      p.durationIn([]string{"corral", "leak_sweep"}, raw.Corral.LeakSweep, 30*time.Second, minLeakSweep, maxLeakSweep, ""),
		BundleCooldown: p.durationIn([]string{"corral", "bundle_cooldown"}, raw.Corral.BundleCooldown, 5*time.Minute, minBundleCooldown, maxBundleCooldown, ""),
		Limits:         p.limits([]string{"corral", "limits"}, raw.Corral.Limits),
		OnLimit:        LimitWarn,
	}
	if h := raw.Corral.HTTP; h != "" {
		host, port, err := net.SplitHostPort(h)
		n, perr := strconv.Atoi(port)
		switch {
		case err != nil || perr != nil || n < 0 || n > 65535:
			p.errAt([]string{"corral", "http"}, "%q is not an address (write \"127.0.0.1:PORT\"; PORT 0 picks a free one)", h)
		case host != "127.0.0.1":
			p.errAt([]string{"corral", "http"}, "%q: the dashboard can start and stop services, so it listens on 127.0.0.1 only (write \"127.0.0.1:%s\")", h, port)
		default:
			f.HTTP = h
		}
	}
	f.Logs = p.logs([]string{"corral", "logs"}, raw.Corral.Logs)
	switch OnLimit(raw.Corral.OnLimit) {
	case "", LimitWarn:
	case LimitStop:
		f.Watch.OnLimit = LimitStop
	default:
		p.errAt([]string{"corral", "on_limit"}, "unknown action %q for global limits (want warn or stop)", raw.Corral.OnLimit)
	}

	// The services of this file and of the files it includes, and the
	// groups (include.go).
	return p.finish(f, raw, src)
}

func sortErrors(errs []error) {
	sort.SliceStable(errs, func(i, j int) bool {
		a, aok := errs[i].(*Error)
		b, bok := errs[j].(*Error)
		if !aok || !bok {
			return aok
		}
		return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
	})
}

func (p *parser) service(name string, r rawService, base string) *Service {
	key := func(k ...string) []string { return append([]string{"services", name}, k...) }
	p.checkName(key(), "service", name)
	s := &Service{Name: name, Preset: r.Preset, Autostart: true, Lifetime: LifetimeLeader, StdinNull: true, Profiles: r.Profiles}
	pr, err := preset(r.Preset, r.Port)
	if err != nil {
		p.errAt(key("preset"), "%v", err)
	}
	switch {
	case len(r.Command) > 0 && r.Shell != "":
		p.errAt(key("shell"), "give either command (an argv list) or shell (a command line), not both")
	case len(r.Command) > 0:
		s.Argv = r.Command
		if p.noNUL(key("command"), "an argument", r.Command...) && r.Command[0] == "" {
			p.errAt(key("command"), "the program (its first element) is empty")
		}
	case r.Shell != "":
		s.Argv, s.Shell = shellArgv(r.Shell), true
		p.noNUL(key("shell"), "the command line", r.Shell)
	case slices.ContainsFunc(p.hinted[strings.Join(key(), ".")], func(h string) bool {
		return strings.Contains(h, `"command"`) || strings.Contains(h, `"shell"`)
	}):
		// A misspelt command or shell: its unknown-key error says so.
	default:
		p.errAt(key(), "no command: add command = [\"program\", \"arg\"] or shell = \"program arg\"")
	}
	if r.Dir != "" {
		s.Dir = absPath(r.Dir, base)
		if p.noNUL(key("dir"), "a path", r.Dir) {
			p.checkDir(key("dir"), s.Dir)
		}
	}
	p.noNUL(key("pidfile"), "a path", r.PIDFile)
	p.noNUL(key("restart_file"), "a path", r.RestartFile)
	if r.PIDFile != "" {
		// Relative to where the service runs: launchers write their pid file
		// relative to their own working directory.
		s.PIDFile = absPath(r.PIDFile, runBase(base, s.Dir))
	}
	envKeys := make([]string, 0, len(r.Env))
	for k := range r.Env {
		envKeys = append(envKeys, k)
	}
	sort.Strings(envKeys)
	for _, k := range envKeys {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			p.errAt(key("env", k), "invalid environment variable name")
			continue
		}
		if k == "CORRAL_INSTANCE" || k == "CORRAL_SERVICE" {
			p.errAt(key("env", k), "is set by corral for every process of the service")
			continue
		}
		if !p.noNUL(key("env", k), "a value", r.Env[k]) {
			continue
		}
		s.Env = append(s.Env, k+"="+r.Env[k])
	}
	if r.Autostart != nil {
		s.Autostart = *r.Autostart
	}
	s.After = r.After
	switch r.Lifetime {
	case "", "leader":
	case "tree":
		s.Lifetime = LifetimeTree
	case "handover":
		s.Lifetime = LifetimeHandover
	default:
		p.errAt(key("lifetime"), "unknown lifetime %q (want leader, tree or handover)", r.Lifetime)
	}
	if r.Lifetime == "" && pr.lifetime != "" && r.PIDFile == "" {
		s.Lifetime = pr.lifetime // a pidfile names the main process itself
	}
	if r.RestartFile != "" {
		s.RestartFile = absPath(r.RestartFile, runBase(base, s.Dir))
	} else if pr.restartFile != "" {
		s.RestartFile = filepath.Join(runBase(base, s.Dir), pr.restartFile)
	}
	for _, kv := range pr.env {
		k, _, _ := strings.Cut(kv, "=")
		if _, set := r.Env[k]; !set {
			s.Env = append(s.Env, kv)
		}
	}
	if s.PIDFile != "" && (s.Lifetime == LifetimeTree || s.Lifetime == LifetimeHandover) {
		p.errAt(key("pidfile"), "pidfile names the main process; remove lifetime = %q (the instance ends when the pid in the file dies)", s.Lifetime)
	}
	switch r.Stdin {
	case "", "null":
	case "inherit":
		s.StdinNull = false
	default:
		p.errAt(key("stdin"), "unknown stdin %q (want null or inherit)", r.Stdin)
	}
	for prof, args := range r.Profiles {
		p.checkName(key("profiles", prof), "profile", prof)
		p.noNUL(key("profiles", prof), "an argument", args...)
	}
	if r.Port < 0 || r.Port > 65535 {
		p.errAt(key("port"), "port %d is out of range", r.Port)
	}
	if r.Limits != nil {
		s.Limits = p.limits(key("limits"), *r.Limits)
	}
	s.OnLimit = LimitWarn
	switch OnLimit(r.OnLimit) {
	case "":
		if !s.Limits.IsZero() {
			s.OnLimit = LimitRestart
		}
	case LimitWarn, LimitRestart, LimitStop, LimitFreeze:
		s.OnLimit = OnLimit(r.OnLimit)
	default:
		p.errAt(key("on_limit"), "unknown action %q (want warn, restart, stop or freeze)", r.OnLimit)
	}

	s.Ready = pr.ready
	if r.Ready != nil {
		s.Ready = p.readyProbes(key("ready"), r.Ready)
	}
	if s.Ready.Timeout == 0 {
		s.Ready.Timeout = 60 * time.Second
	}
	if s.Ready.Interval == 0 {
		s.Ready.Interval = 100 * time.Millisecond
	}
	if r.Health != nil {
		s.Health.Probe = p.probe(key("health"), *r.Health, false)
		s.Health.Failures = 3
		if f := r.Health.Failures; f != nil {
			if *f < minFailures || *f > maxFailures {
				p.errAt(key("health", "failures"), "%d is outside %d..%d", *f, minFailures, maxFailures)
			} else {
				s.Health.Failures = *f
			}
		}
		if s.Health.Interval == 0 {
			s.Health.Interval = 10 * time.Second
		}
		if s.Health.Timeout == 0 {
			s.Health.Timeout = 5 * time.Second
		}
	}

	s.Restart = restart.Defaults()
	if r.Restart != nil {
		rr := *r.Restart
		if m, err := restart.ParseMode(rr.Policy); err != nil {
			p.errAt(key("restart", "policy"), "unknown policy %q (want always, on-failure or never)", rr.Policy)
		} else {
			s.Restart.Mode = m
		}
		before := len(p.errs)
		s.Restart.Backoff = p.durationIn(key("restart", "backoff"), rr.Backoff, s.Restart.Backoff, 0, maxRestartBackoff, "")
		s.Restart.MaxBackoff = p.durationIn(key("restart", "max_backoff"), rr.MaxBackoff, max(s.Restart.MaxBackoff, s.Restart.Backoff), 0, maxMaxBackoff, "")
		// A window below a second counts no start twice: the start limit
		// would be off without saying so.
		s.Restart.Window = p.durationIn(key("restart", "window"), rr.Window, s.Restart.Window, minWindow, maxWindow,
			"; to turn the start limit off write burst = 0")
		s.Restart.StableAfter = p.durationIn(key("restart", "stable_after"), rr.StableAfter, s.Restart.StableAfter, 0, maxStableAfter, "")
		if s.Restart.MaxBackoff < s.Restart.Backoff {
			p.errAt(key("restart", "max_backoff"), "%s is shorter than backoff (%s)", s.Restart.MaxBackoff, s.Restart.Backoff)
		}
		if rr.Jitter != nil {
			if j := *rr.Jitter; !(j >= 0 && j < 1) {
				p.errAt(key("restart", "jitter"), "%v is outside [0, 1) (0.2: each delay shortened by up to 20%%)", j)
			} else {
				s.Restart.Jitter = j
			}
		}
		if rr.Burst != nil {
			if b := *rr.Burst; b < 0 || b > maxBurst {
				p.errAt(key("restart", "burst"), "%d is outside 0..%d (0 turns the start limit off)", b, maxBurst)
			} else {
				s.Restart.Burst = b
			}
		}
		if len(p.errs) == before {
			if err := s.Restart.Validate(); err != nil {
				p.errAt(key("restart"), "%s", strings.TrimPrefix(err.Error(), "restart: "))
			}
		}
	}

	s.Stop = Stop{Hook: pr.hook, Signal: syscall.SIGTERM, Grace: 10 * time.Second}
	if pr.signal != "" {
		s.Stop.Signal, _ = parseSignal(pr.signal)
	}
	if pr.grace != 0 {
		s.Stop.Grace = pr.grace
	}
	if r.Stop != nil {
		switch r.Stop.Hook {
		case "":
		case "none":
			// A preset's hook may not suit a build of the server.
			s.Stop.Hook = nil
		default:
			h, err := parseHook(r.Stop.Hook)
			if err != nil {
				p.errAt(key("stop", "hook"), "%v", err)
			}
			s.Stop.Hook = h
		}
		if r.Stop.Signal != "" {
			sig, err := parseSignal(r.Stop.Signal)
			if err != nil {
				p.errAt(key("stop", "signal"), "%v", err)
			}
			s.Stop.Signal = sig
		}
		s.Stop.Grace = p.durationIn(key("stop", "grace"), r.Stop.Grace, s.Stop.Grace, 0, maxGrace, "")
	}
	s.Logs = p.logs(key("logs"), r.Logs)
	p.runKeys(key, s, r, base, pr)
	return s
}

// lineCol gives the 1-based line and column of byte offset off in src.
func lineCol(src string, off int) (line, col int) {
	off = max(0, min(off, len(src)))
	line = 1 + strings.Count(src[:off], "\n")
	return line, off - strings.LastIndexByte(src[:off], '\n')
}

// absPath expands a leading ~/ and makes p absolute against base.
func absPath(p, base string) string {
	if strings.HasPrefix(p, "~/") || p == "~" {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[1:])
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	return p
}

func (p *parser) limits(key []string, r rawLimits) Limits {
	sub := func(k string) []string { return append(slices.Clone(key), k) }
	l := Limits{Processes: r.Processes, ForkRate: r.ForkRate}
	switch {
	case r.Processes < 0:
		p.errAt(sub("processes"), "must not be negative")
		l.Processes = 0
	case r.Processes > maxProcesses:
		p.errAt(sub("processes"), "%d is above the maximum of %d", r.Processes, maxProcesses)
		l.Processes = 0
	}
	switch {
	case !finite(r.ForkRate):
		p.errAt(sub("fork_rate"), "%v is not a number of processes per second", r.ForkRate)
		l.ForkRate = 0
	case r.ForkRate < 0:
		p.errAt(sub("fork_rate"), "must not be negative")
		l.ForkRate = 0
	case r.ForkRate > maxForkRate:
		p.errAt(sub("fork_rate"), "%v is above the maximum of %g", r.ForkRate, float64(maxForkRate))
		l.ForkRate = 0
	}
	l.Memory = p.sizeLimit(sub("memory"), r.Memory)
	l.GPUMemory = p.sizeLimit(sub("gpu_memory"), r.GPUMemory)
	return l
}

// sizeLimit reads a size limit: a size string or a number of bytes; 0 (or
// none) is no limit.
func (p *parser) sizeLimit(key []string, v any) int64 {
	var n int64
	switch v := v.(type) {
	case nil:
	case int64:
		n = v
	case string:
		var err error
		if n, err = ParseSize(v); err != nil {
			p.errAt(key, "%v", err)
		}
	default:
		p.errAt(key, "write a size: \"150MB\", \"24GiB\" or a number of bytes")
	}
	if n < 0 {
		p.errAt(key, "must not be negative")
		n = 0
	}
	return n
}

// ParseSize parses "150MB", "24GiB", "512k", "1000000" (bytes). Decimal
// units are powers of 1000, binary ones (KiB, MiB, GiB) of 1024.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	f, err := strconv.ParseFloat(num, 64)
	if errors.Is(err, strconv.ErrRange) && f > 0 {
		return 0, fmt.Errorf("%q is too large (at most %d bytes)", s, int64(math.MaxInt64))
	}
	if err != nil || num == "" || !finite(f) {
		return 0, fmt.Errorf("%q is not a size (write e.g. \"150MB\" or \"24GiB\")", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
	m, ok := mult[unit]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s)
	}
	// float64(MaxInt64) is 2^63, which int64 cannot hold: >= refuses it.
	if b := f * m; !finite(b) || b >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large (at most %d bytes)", s, int64(math.MaxInt64))
	}
	return int64(f * m), nil
}

func (p *parser) probe(key []string, r rawProbe, readiness bool) Probe {
	sub := func(k string) []string { return append(slices.Clone(key), k) }
	var pr Probe
	if r.HTTP != "" {
		u, err := url.Parse(r.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.errAt(sub("http"), "%q is not an http(s) URL with a host", r.HTTP)
		}
		pr.HTTP = r.HTTP
	}
	if r.Body != "" {
		re, err := regexp.Compile(r.Body)
		if err != nil {
			p.errAt(sub("body"), "bad regular expression: %v", err)
		}
		if r.HTTP == "" {
			p.errAt(sub("body"), "body needs http")
		}
		pr.Body = re
	}
	if r.TCP != "" {
		if _, port, err := net.SplitHostPort(r.TCP); err != nil || port == "" {
			p.errAt(sub("tcp"), "%q is not host:port", r.TCP)
		}
		pr.TCP = r.TCP
	}
	pr.Exec = r.Exec
	if p.noNUL(sub("exec"), "an argument", r.Exec...) && len(r.Exec) > 0 && r.Exec[0] == "" {
		p.errAt(sub("exec"), "the program (its first element) is empty")
	}
	if r.Log != "" {
		if !readiness {
			p.errAt(sub("log"), "a log line can only gate readiness, not health")
		}
		re, err := regexp.Compile(r.Log)
		if err != nil {
			p.errAt(sub("log"), "bad regular expression: %v", err)
		}
		pr.Log = re
	}
	if readiness && r.Failures != nil {
		p.errAt(sub("failures"), "failures applies to health, not ready")
	}
	maxTimeout := maxHealthTimeout
	if readiness {
		maxTimeout = maxReadyTimeout
	}
	pr.Timeout = p.durationIn(sub("timeout"), r.Timeout, 0, minProbeTimeout, maxTimeout, "")
	pr.Interval = p.durationIn(sub("interval"), r.Interval, 0, minProbeInterval, maxProbeInterval, "")
	if pr.IsZero() {
		p.errAt(key, "no check: give http, tcp, exec or log")
	}
	return pr
}

func (p *parser) checkAfter(f *File, in func(name string) *parser) {
	if in == nil {
		in = func(string) *parser { return p }
	}
	failed := false
	for _, name := range f.Names() {
		s, sp := f.Services[name], in(name)
		for _, dep := range s.After {
			if dep == name {
				sp.errAt([]string{"services", name, "after"}, "a service cannot start after itself")
				failed = true
			} else if _, ok := f.Services[dep]; !ok {
				sp.errAt([]string{"services", name, "after"}, "unknown service %q%s", dep, DidYouMean(dep, f.Names()))
				failed = true
			}
		}
	}
	if failed || len(p.errs) > 0 {
		return
	}
	if _, err := f.StartOrder(); err != nil {
		p.errs = append(p.errs, &Error{File: p.path, Line: 1, Col: 1, Msg: err.Error()})
	}
}

// StartOrder returns the services in levels: every service's dependencies
// are in earlier levels. Services of one level may start in parallel; stop
// runs the levels in reverse.
func (f *File) StartOrder() ([][]string, error) {
	done := map[string]bool{}
	var levels [][]string
	for len(done) < len(f.Services) {
		var level []string
		for _, n := range f.Names() {
			if done[n] {
				continue
			}
			ready := true
			for _, d := range f.Services[n].After {
				ready = ready && done[d]
			}
			if ready {
				level = append(level, n)
			}
		}
		if len(level) == 0 {
			var cyc []string
			for _, n := range f.Names() {
				if !done[n] {
					cyc = append(cyc, n)
				}
			}
			return nil, fmt.Errorf("services %s depend on each other in a cycle (see their after keys)", strings.Join(cyc, ", "))
		}
		for _, n := range level {
			done[n] = true
		}
		levels = append(levels, level)
	}
	return levels, nil
}

func parseHook(s string) (*Hook, error) {
	method, u := "POST", s
	if m, rest, ok := strings.Cut(s, " "); ok {
		method, u = strings.ToUpper(m), strings.TrimSpace(rest)
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return nil, fmt.Errorf("%q is not \"METHOD http://host/path\" (or \"none\" for no hook)", s)
	}
	return &Hook{Method: method, URL: u}, nil
}
