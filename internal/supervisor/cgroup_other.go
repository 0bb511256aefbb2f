//go:build !linux

package supervisor

import "errors"

// cgroupOf: there are no cgroups here (and no strays: no subreaper).
func cgroupOf(pid int) (string, error) { return "", errors.ErrUnsupported }
