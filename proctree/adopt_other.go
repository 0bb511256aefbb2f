//go:build !linux && !darwin && !windows

package proctree

import (
	"errors"
	"syscall"
)

func adoptBackend(instance string, o AdoptOptions) (backend, error) {
	return nil, errors.ErrUnsupported
}

func sendVerified(pid int, sig syscall.Signal, isMember func() bool) bool { return false }
