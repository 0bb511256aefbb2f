//go:build !linux && !darwin && !windows

package proctree

import (
	"errors"
	"os/exec"
)

// startGated: no backend exists here (newBackend fails first).
func startGated(cmd *exec.Cmd, b backend, id string, gate func(Gated) error) error {
	return errors.ErrUnsupported
}
