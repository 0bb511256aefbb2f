//go:build !linux && !darwin && !windows

package bootsvc

import (
	"errors"
	"fmt"
)

// Native: only systemd (Linux), launchd (macOS) and Task Scheduler or the
// SCM (Windows) are supported.
func Native(scope Scope) (Manager, error) {
	return nil, fmt.Errorf("bootsvc: no service manager support on this OS: %w", errors.ErrUnsupported)
}

// CheckPrivilege: see Native.
func CheckPrivilege(scope Scope) error {
	return fmt.Errorf("bootsvc: no service manager support on this OS: %w", errors.ErrUnsupported)
}
