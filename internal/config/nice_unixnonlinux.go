//go:build unix && !linux

package config

import "golang.org/x/sys/unix"

// ownNice is this process's nice value.
func ownNice() int {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return 0
	}
	return p
}

// niceLimit: no RLIMIT_NICE here.
func niceLimit() int { return 0 }
