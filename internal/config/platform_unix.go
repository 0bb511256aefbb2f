//go:build unix

package config

import (
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func shellArgv(line string) []string { return []string{"/bin/sh", "-c", line} }

func parseSignal(s string) (syscall.Signal, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q (e.g. TERM, INT, HUP, QUIT, USR1)", s)
}
