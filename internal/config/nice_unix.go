//go:build unix

package config

import (
	"fmt"
	"os"
)

// checkNice refuses a nice value corral may not give a process: one below
// its own (a higher priority) without root, past what RLIMIT_NICE allows.
func checkNice(n int) error {
	if os.Geteuid() == 0 {
		return nil
	}
	own := ownNice()
	if n >= own {
		return nil
	}
	if lim := niceLimit(); lim > 0 && n >= 20-lim {
		return nil
	}
	return fmt.Errorf("%d is a higher priority than corral's own (nice %d), which needs corral to run as root; use %d..19, or run the daemon as root", n, own, own)
}
