package bootsvc

import (
	"fmt"
	"strings"
	"time"
)

// DocURL is where a definition points its reader.
const DocURL = "https://github.com/corral-sh/corral/blob/main/docs/boot.md"

// SystemdUnit returns the systemd unit that runs s's daemon.
//
// Type=exec: corral does not speak sd_notify, so the unit cannot report
// readiness (Type=notify would wait for a READY=1 that never comes and
// then fail the start); exec rather than simple makes a start whose
// binary cannot be executed fail in systemctl instead of after it.
//
// Delegate=yes hands the unit's cgroup subtree to corral: its trees get
// cgroups of their own under the unit's, so the cgroup tier (and its
// cgroup.kill) works in a user manager without root.
//
// KillMode=mixed sends the stop signal (SIGTERM) to the daemon alone,
// which then stops every service in dependency order, with stop hooks and
// grace periods, and verifies that nothing is left; only what is still
// there after the daemon exits, or after TimeoutStopSec, is SIGKILLed
// (the whole cgroup, delegated subtree included). With the default
// control-group mode every service would get SIGTERM at the same moment as
// the daemon, before its stop hook and out of order.
func SystemdUnit(s Spec) (string, error) {
	if err := s.check(unixPaths); err != nil {
		return "", err
	}
	if strings.ContainsAny(s.Executable, `"'\`) {
		// Unquoted correctly all the same: systemd refuses such a
		// program path ("Executable name contains special characters").
		return "", fmt.Errorf("bootsvc: systemd does not run a program whose path contains a quote or a backslash: %q (install corral elsewhere)", s.Executable)
	}
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	line("# The corral daemon for %s, written by `corral service install`.", s.Config)
	line("# Install again after moving corral or the configuration, or after changing")
	line("# shutdown_timeout (TimeoutStopSec is sized from it). See %s", DocURL)
	line("[Unit]")
	line("Description=corral supervisor for %s", sdPercent(s.Config))
	line("Documentation=%s", DocURL)
	if s.Scope == System {
		line("After=network.target")
	}
	line("")
	line("[Service]")
	line("# corral does not speak sd_notify: the unit is active once corral runs.")
	line("Type=exec")
	line("ExecStart=%s", sdExecLine(s.Executable, s.Args()))
	line("ExecReload=%s", sdExecLine(s.Executable, s.ReloadArgs()))
	if s.WorkingDir != "" {
		// Taken literally, without unquoting: only specifiers need escaping.
		line("WorkingDirectory=%s", sdPercent(s.WorkingDir))
	}
	for _, kv := range s.Env {
		line("Environment=%s", sdQuote(sdPercent(kv)))
	}
	if s.Scope == System && s.RunAs != "" {
		line("User=%s", s.RunAs)
	}
	line("# corral's trees get cgroups of their own below this unit's (cgroup tier, no root needed).")
	line("Delegate=yes")
	line("# SIGTERM to the daemon alone: it stops every service, verified; what is left after it")
	line("# exits, or after TimeoutStopSec, is killed.")
	line("KillMode=mixed")
	line("TimeoutStopSec=%s", sdSeconds(s.stopTimeout()))
	line("Restart=on-failure")
	line("RestartSec=2s")
	line("")
	line("[Install]")
	if s.Scope == System {
		line("WantedBy=multi-user.target")
	} else {
		line("WantedBy=default.target")
	}
	return b.String(), nil
}

// sdSeconds writes d in whole seconds, rounded up.
func sdSeconds(d time.Duration) string {
	return fmt.Sprintf("%ds", int64((d+time.Second-1)/time.Second))
}

// sdPercent escapes unit specifiers: systemd expands %h, %n, ... in most
// settings, and %% is a literal percent sign.
func sdPercent(v string) string { return strings.ReplaceAll(v, "%", "%%") }

// sdExecLine writes an Exec*= command line: each word is unquoted and
// C-unescaped by systemd, then specifiers are expanded in it, and in the
// arguments (not in the program's path) $VAR references too ($$ is a
// literal dollar sign).
func sdExecLine(exe string, args []string) string {
	words := []string{sdWord(sdPercent(exe))}
	for _, a := range args {
		words = append(words, sdWord(strings.ReplaceAll(sdPercent(a), "$", "$$")))
	}
	return strings.Join(words, " ")
}

func sdWord(w string) string {
	if w == "" || strings.ContainsFunc(w, sdNeedsQuote) {
		return sdQuote(w)
	}
	return w
}

// sdNeedsQuote reports a character that is not safe in an unquoted word:
// white space, quotes and backslashes change how systemd splits words; a
// lone ';' separated commands in older versions.
func sdNeedsQuote(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return !strings.ContainsRune("/_.,:=@+-$%", r)
}

// sdQuote double-quotes v with C escapes for the backslash and the quote,
// as systemd's unquoting (EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE) reads it.
func sdQuote(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	v = strings.ReplaceAll(v, `"`, `\"`)
	return `"` + v + `"`
}
