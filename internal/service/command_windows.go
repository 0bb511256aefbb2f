package service

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/corral-sh/corral/internal/config"
)

// command builds the service's process. cmd.exe does not parse Go's
// argument escaping (\"), so anything cmd.exe runs gets its command line
// verbatim: a shell line as `cmd.exe /d /s /c "LINE"`, and a .bat/.cmd
// program (which Windows can only run through cmd.exe) the same way with
// each argument quoted the way cmd.exe expects.
func command(argv []string, shell bool) *exec.Cmd {
	switch {
	case shell && len(argv) == 5:
		return viaCmd(argv[4])
	case isCmd(argv[0]):
		// cmd.exe itself parses its line again: Go's escaping (which leaves
		// & | < > ^ bare) would let an argument run commands. Every
		// argument is quoted the way cmd.exe reads it.
		parts := make([]string, len(argv))
		for i, a := range argv {
			parts[i] = cmdQuote(a)
		}
		cmd := exec.Command(argv[0])
		cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: strings.Join(parts, " ")}
		return cmd
	case config.RunsViaCmd(argv[0], true):
		parts := make([]string, len(argv))
		for i, a := range argv {
			parts[i] = cmdQuote(a)
		}
		return viaCmd(strings.Join(parts, " "))
	}
	return exec.Command(argv[0], argv[1:]...)
}

func isCmd(program string) bool {
	base := strings.ToLower(filepath.Base(program))
	return base == "cmd" || base == "cmd.exe"
}

func viaCmd(line string) *exec.Cmd {
	cmd := exec.Command("cmd.exe")
	// /d: no AutoRun; /s /c "...": strip exactly the outer quotes.
	cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: `cmd.exe /d /s /c "` + line + `"`}
	return cmd
}

// cmdQuote quotes an argument for cmd.exe: in quotes if it has spaces or
// characters cmd.exe treats specially, embedded quotes doubled.
func cmdQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"&|<>()^%!,;=") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
