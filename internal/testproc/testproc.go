package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
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
	if path := os.Getenv(SigLogEnv); path != "" {
		logSignals(path)
	}
	fn(os.Args[1:])
	os.Exit(0)
}

func logSignals(path string) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1,
		syscall.SIGUSR2, syscall.SIGQUIT, syscall.SIGCONT)
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

// Command returns a command that runs fixture name with args.
func Command(name string, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		panic("testproc: " + err.Error())
	}
	cmd := exec.Command(exe, args...)
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
	cmd := exec.Command("/bin/sh", append([]string{"-c", `"$0" "$@"; status=$?; exit $status`, exe}, args...)...)
	cmd.Env = fixtureEnv(name)
	return cmd
}

func fixtureEnv(name string) []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, Env+"=") {
			env = append(env, kv)
		}
	}
	return append(env, Env+"="+name)
}

// block waits until the process is killed (or its TTL ends it).
func block() { select {} }
