//go:build !linux

package reaper

import "errors"

// EnableSubreaper is not supported here: orphans go to the system's init.
func EnableSubreaper() error { return errors.ErrUnsupported }

// IsSubreaper reports false: there is no subreaper mechanism here.
func IsSubreaper() bool { return false }

func startLoop() {}

// Reap does nothing where corral cannot be a subreaper.
func Reap() int { return 0 }

// Collect does nothing where corral cannot be a subreaper.
func Collect(pid int) bool { return false }

// Children lists nothing: without a subreaper a parent pid says nothing
// about whose a process is.
func Children() []int { return nil }
