package config

import (
	"fmt"
	"strings"
	"syscall"
)

// shellArgv runs a command line through cmd.exe; /d skips AutoRun, /s keeps
// the quoting of the line as written.
func shellArgv(line string) []string { return []string{"cmd.exe", "/d", "/s", "/c", line} }

func parseSignal(s string) (syscall.Signal, error) {
	switch strings.ToUpper(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "SIG")) {
	case "TERM", "INT", "BREAK":
		return syscall.SIGTERM, nil
	case "KILL":
		return syscall.SIGKILL, nil
	}
	return 0, fmt.Errorf("unknown signal %q (on Windows: TERM, INT or KILL)", s)
}
