//go:build !windows

package service

import "os/exec"

func command(argv []string, shell bool) *exec.Cmd { return exec.Command(argv[0], argv[1:]...) }
