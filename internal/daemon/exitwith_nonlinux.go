//go:build !linux

package daemon

import (
	"os"
	"runtime"
	"syscall"
	"time"
)

// waitPID returns when process pid has exited.
func waitPID(pid int) {
	if runtime.GOOS == "windows" {
		if p, err := os.FindProcess(pid); err == nil {
			p.Wait()
		}
		return
	}
	for {
		p, err := os.FindProcess(pid)
		if err != nil || p.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
