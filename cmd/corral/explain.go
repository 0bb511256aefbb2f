package main

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/ipc"
)

// shellWord quotes s for the user's shell when it needs it: a POSIX
// shell's, or on Windows cmd.exe's (and PowerShell's) double quotes.
func shellWord(s string) string {
	if runtime.GOOS == "windows" {
		if s != "" && !strings.ContainsAny(s, " \t&()^|<>;,'`$") {
			return s
		}
		return `"` + s + `"`
	}
	if s != "" && !strings.ContainsAny(s, " \t\n'\"$`\\*?[]{}()<>|&;!#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// commandFor is corral VERB as cmd was given the configuration and state
// directory: with -c and --state-dir when they were set.
func commandFor(cmd *cobra.Command, verb string) string {
	parts := []string{"corral"}
	if f := cmd.Flag("config"); f != nil && f.Changed {
		parts = append(parts, "-c", shellWord(f.Value.String()))
	}
	if f := cmd.Flag("state-dir"); f != nil && f.Changed {
		parts = append(parts, "--state-dir", shellWord(f.Value.String()))
	}
	return strings.Join(append(parts, verb), " ")
}

// upCommand is the corral up that starts a daemon for what cmd was given.
func upCommand(cmd *cobra.Command) string { return commandFor(cmd, "up") }

func (g *globals) upCommand(cmd *cobra.Command) string { return upCommand(cmd) }

// explained is an error with a message of the CLI's own; errors.Is still
// sees what it explains (for the exit code).
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// explainNoDaemon fits the client's "no daemon" message to the command
// that got it: the corral up it suggests names the -c and --state-dir the
// command was given, and a stop or shutdown, which has nothing to act on,
// says so instead of suggesting to start one.
func explainNoDaemon(cmd *cobra.Command, err error) error {
	if cmd == nil || !errors.Is(err, client.ErrNoDaemon) {
		return err
	}
	var stateDir string
	if f := cmd.Flag("state-dir"); f != nil && f.Value.String() != "" {
		stateDir = f.Value.String()
	} else if f := cmd.Flag("config"); f != nil {
		stateDir = (&globals{config: f.Value.String()}).state()
	}
	if _, held := ipc.LockHolder(stateDir); !held {
		switch cmd.Name() {
		case "shutdown":
			return &explained{err: err, msg: fmt.Sprintf("no corral daemon is running for %s: nothing to shut down (what an earlier run left behind, corral reap finds and stops)", stateDir)}
		case "stop":
			return &explained{err: err, msg: fmt.Sprintf("no corral daemon is running for %s: nothing runs under it to stop (what an earlier run left behind, corral reap finds and stops)", stateDir)}
		}
	}
	up := upCommand(cmd)
	if up == "corral up" {
		return err
	}
	msg := err.Error()
	msg = strings.Replace(msg, "start one with: corral up", "start one with: "+up, 1)
	msg = strings.Replace(msg, "and run corral up", "and run "+up, 1)
	return &explained{err: err, msg: msg}
}

// usageErr is a usage error (exit 2) whose message is the CLI's own.
func usageErr(format string, args ...any) error {
	return &explained{msg: fmt.Sprintf(format, args...), err: errUsage}
}
