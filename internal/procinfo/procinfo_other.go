//go:build !linux && !darwin && !windows

package procinfo

import (
	"errors"
	"time"
)

// ReadStat is not implemented on this platform.
func ReadStat(pid int) (Stat, error) { return Stat{}, errors.ErrUnsupported }

// PIDs is not implemented on this platform.
func PIDs() ([]int, error) { return nil, errors.ErrUnsupported }

// Snapshot is not implemented on this platform.
func Snapshot() ([]Stat, error) { return nil, errors.ErrUnsupported }

// Cmdline is not implemented on this platform.
func Cmdline(pid int) ([]string, error) { return nil, errors.ErrUnsupported }

// Marker is not implemented on this platform.
func Marker(pid int) string { return "" }

// ReadMarkers is not implemented on this platform: trees are found by their
// container, not by markers.
func ReadMarkers(pid int) Markers { return Markers{} }

// BootID is not implemented on this platform.
func BootID() string { return "unknown" }

// StartTime is not implemented on this platform.
func StartTime(ticks uint64) time.Time { return time.Time{} }
