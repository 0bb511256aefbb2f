package config

import "golang.org/x/sys/unix"

// ownNice is this process's nice value. Linux's getpriority returns
// 20 - nice.
func ownNice() int {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return 0
	}
	return 20 - p
}

// niceLimit is RLIMIT_NICE: a process may lower its nice value down to
// 20 - limit without privilege.
func niceLimit() int {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NICE, &rl) != nil {
		return 0
	}
	return int(min(rl.Cur, 40))
}
