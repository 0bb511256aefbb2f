package service

import (
	"os/exec"
	"syscall"
)

// command builds the service's process. A shell line goes to cmd.exe
// verbatim as `cmd.exe /d /s /c "LINE"`: Go's argument escaping (\")
// is not cmd.exe's, so a line with quoted paths would be mangled.
func command(argv []string, shell bool) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	if shell && len(argv) == 5 {
		cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: `cmd.exe /d /s /c "` + argv[4] + `"`}
	}
	return cmd
}
