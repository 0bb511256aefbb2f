package testproc

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"time"
)

// Env selects the fixture a re-run binary executes.
const Env = "CORRAL_TESTPROC"

// TTLEnv bounds every fixture's life, so that a failing test cannot leave
// processes running for long (default 10 minutes).
const TTLEnv = "CORRAL_TESTPROC_TTL"

// SigLogEnv names a file to which a fixture appends a line for every
// catchable signal it receives (instead of acting on it).
const SigLogEnv = "CORRAL_TESTPROC_SIGLOG"

var registry = map[string]func(args []string){}

// Register adds a fixture. Call it from init.
func Register(name string, fn func(args []string)) { registry[name] = fn }

// Main runs the fixture named by CORRAL_TESTPROC and exits, or returns at
// once when the variable is unset. Call it first in TestMain (or main).
func Main() {
	name := os.Getenv(Env)
	if name == "" {
		return
	}
	fn, ok := registry[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "testproc: unknown fixture %q\n", name)
		os.Exit(2)
	}
	ttl := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv(TTLEnv)); err == nil {
		ttl = d
	}
	time.AfterFunc(ttl, func() { os.Exit(3) })
	takeReadyPipe()
	if path := os.Getenv(SigLogEnv); path != "" {
		logSignals(path)
	}
	args := os.Args[1:]
	if len(args) > 0 && args[0] == name {
		args = args[1:]
	}
	fn(args)
	os.Exit(0)
}

func logSignals(path string) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, loggedSignals...)
	go func() {
		for sig := range ch {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err == nil {
				fmt.Fprintf(f, "%d %v\n", os.Getpid(), sig)
				f.Close()
			}
		}
	}()
}

// Command returns a command that runs fixture name with args. The name is
// also the first argument, so a process listing tells fixtures apart.
func Command(name string, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		panic("testproc: " + err.Error())
	}
	cmd := exec.Command(exe, append([]string{name}, args...)...)
	cmd.Env = fixtureEnv(name)
	return cmd
}

// ShellWrapped returns `/bin/sh -c '"$0" "$@"; ...'` running fixture name:
// the shell stays alive as the parent of the fixture, like cmd.exe running a
// .bat, or bash running webui.sh.
func ShellWrapped(name string, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		panic("testproc: " + err.Error())
	}
	// The command after the fixture keeps the shell from exec'ing it.
	cmd := exec.Command("/bin/sh", append([]string{"-c", `"$0" "$@"; status=$?; exit $status`, exe, name}, args...)...)
	cmd.Env = fixtureEnv(name)
	return cmd
}

func fixtureEnv(name string) []string {
	env := make([]string, 0, len(os.Environ())+2)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, Env+"=") && !strings.HasPrefix(kv, "GORACE=") && !strings.HasPrefix(kv, readyEnv+"=") {
			env = append(env, kv)
		}
	}
	// Under -race a process sleeps a second at exit by default; a fixture
	// that double-forks would then look like a slow daemon.
	return append(env, Env+"="+name, "GORACE=atexit_sleep_ms=0")
}

// TreeStarted is the line the webui fixture prints once every process of its
// tree runs and has finished its setup (a TERM-ignorer has its signal
// ignored, a daemon has been double-forked).
const TreeStarted = "webui: tree started"

// readyEnv tells a fixture that fd 3 is a pipe on which to report readiness.
const readyEnv = "CORRAL_TESTPROC_READY"

// readyPipe is the parent's ready pipe, taken at start so that neither the
// variable nor the descriptor leaks into this fixture's own children (a
// grandchild reporting on the grandparent's pipe would fake readiness).
var readyPipe *os.File

func takeReadyPipe() {
	if os.Getenv(readyEnv) != "3" {
		return
	}
	os.Unsetenv(readyEnv)
	closeOnExec(3)
	readyPipe = os.NewFile(3, "ready")
}

// ready reports this fixture's setup as done to the parent that asked for it.
func ready() {
	if readyPipe == nil {
		return
	}
	readyPipe.Write([]byte{1})
	readyPipe.Close()
	readyPipe = nil
}

// startReady starts cmds and waits until each has called ready.
func startReady(cmds ...*exec.Cmd) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	for _, c := range cmds {
		c.ExtraFiles = []*os.File{w}
		c.Env = append(c.Env, readyEnv+"=3")
		if err := c.Start(); err != nil {
			w.Close()
			return err
		}
	}
	w.Close()
	buf := make([]byte, len(cmds))
	if _, err := io.ReadFull(r, buf); err != nil {
		return fmt.Errorf("testproc: children did not all report ready: %w", err)
	}
	return nil
}

// LineWaiter is an io.Writer that closes Seen when a line starting with
// Prefix has been written. Use it as a fixture's Stdout to await an event
// the fixture announces.
type LineWaiter struct {
	Prefix string
	Seen   chan struct{}

	mu   sync.Mutex // guards buf and done
	buf  []byte
	done bool
}

// NewLineWaiter returns a LineWaiter for prefix.
func NewLineWaiter(prefix string) *LineWaiter {
	return &LineWaiter{Prefix: prefix, Seen: make(chan struct{})}
}

func (w *LineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if strings.HasPrefix(line, w.Prefix) {
			w.done = true
			close(w.Seen)
			w.buf = nil
			break
		}
	}
	return len(p), nil
}

// block waits until the process is killed (or its TTL ends it).
func block() { select {} }
