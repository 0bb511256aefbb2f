//go:build !linux && !darwin && !windows

package proctree

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
)

func newBackend(id string, mode Containment, opts Options) (backend, error) {
	return nil, fmt.Errorf("proctree: contained trees on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

func signalName(sig syscall.Signal) string { return sig.String() }

func resolve(mode Containment, opts Options) (Mechanism, string, error) {
	return "", "", fmt.Errorf("proctree: contained trees on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
