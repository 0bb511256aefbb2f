package testproc

import (
	"os/exec"

	"github.com/corral-sh/corral/internal/fixture"
)

// The runtime (registry, Main, the ready pipe) and the demo's WebUI tree
// are internal/fixture's, linked into corral itself; this package adds the
// fixtures and observers that only tests use, and is linked into test
// binaries only. The names below keep tests written against one package.

const (
	// Env selects the fixture a re-run binary executes.
	Env = fixture.Env
	// TTLEnv bounds every fixture's life (default 10 minutes).
	TTLEnv = fixture.TTLEnv
	// SigLogEnv names a file to which a fixture appends a line for every
	// catchable signal it receives (instead of acting on it).
	SigLogEnv = fixture.SigLogEnv
	// TreeStarted is the line the webui fixture prints once its tree runs.
	TreeStarted = fixture.TreeStarted
	// WebUISize is the number of processes the default webui fixture runs.
	WebUISize = fixture.WebUISize
)

// LineWaiter closes Seen when a line starting with Prefix was written.
type LineWaiter = fixture.LineWaiter

// Register adds a fixture. Call it from init.
func Register(name string, fn func(args []string)) { fixture.Register(name, fn) }

// Main runs the fixture named by CORRAL_TESTPROC and exits, or returns at
// once when the variable is unset. Call it first in TestMain.
func Main() { fixture.Main() }

// Command returns a command that runs fixture name with args.
func Command(name string, args ...string) *exec.Cmd { return fixture.Command(name, args...) }

// ShellWrapped returns /bin/sh running fixture name, the shell staying its
// parent.
func ShellWrapped(name string, args ...string) *exec.Cmd { return fixture.ShellWrapped(name, args...) }

// NewLineWaiter returns a LineWaiter for prefix.
func NewLineWaiter(prefix string) *LineWaiter { return fixture.NewLineWaiter(prefix) }

// Shorthands for the fixtures of this package.
var stopSignals = fixture.StopSignals

func ready()                                       { fixture.Ready() }
func block()                                       { fixture.Block() }
func startReady(cmds ...*exec.Cmd) error           { return fixture.StartReady(cmds...) }
func child(name string, args ...string) *exec.Cmd  { return fixture.Child(name, args...) }
func startChild(name string, args ...string) error { return fixture.StartChild(name, args...) }
func detach(c *exec.Cmd)                           { fixture.Detach(c) }
func execSelf(args []string)                       { fixture.ExecSelf(args) }
