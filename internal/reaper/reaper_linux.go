package reaper

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/corral-sh/corral/internal/procinfo"
)

var subreaperOnce = sync.OnceValue(func() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("reaper: become child subreaper: %w", err)
	}
	return nil
})

// EnableSubreaper makes this process the reaper of its descendants' orphans.
// It is process-wide and cannot be undone by design: a tree started while
// subreaping must stay findable until it is gone.
func EnableSubreaper() error { return subreaperOnce() }

// IsSubreaper reports whether this process is a child subreaper.
func IsSubreaper() bool {
	var v int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0, 0, 0); err != nil {
		return false
	}
	return v != 0
}

var loopOnce sync.Once

// startLoop reaps on every SIGCHLD. SIGCHLD is also sent when a zombie is
// re-parented to us, so orphans are collected as they arrive.
func startLoop() {
	loopOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGCHLD)
		go func() {
			for range ch {
				if haveClaims() {
					Reap()
				}
			}
		}()
	})
}

// Children lists this process's children (the direct ones, orphans
// re-parented to it included).
func Children() []int { return children() }

// children lists this process's children. Orphans are re-parented to one
// thread of the subreaper, so every task's list is read.
func children() []int {
	self := os.Getpid()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return scanChildren(self)
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", t.Name(), "children"))
		if err != nil {
			// Kernels without CONFIG_PROC_CHILDREN: fall back to a scan.
			return scanChildren(self)
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

func scanChildren(self int) []int {
	ss, err := procinfo.Snapshot()
	if err != nil {
		return nil
	}
	var out []int
	for _, s := range ss {
		if s.PPID == self {
			out = append(out, s.PID)
		}
	}
	return out
}

// Reap collects every claimed zombie child now (in init mode, every
// unprotected one) and returns how many it reaped.
func Reap() int {
	n := 0
	for _, pid := range children() {
		st, err := procinfo.ReadStat(pid)
		if err != nil || !st.Zombie() || !claimed(st) {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			n++
		}
	}
	return n
}

// Collect reaps pid now if it is a zombie child of this process (an orphan
// that a tree handed to us and that was then killed); it reports whether it
// did.
func Collect(pid int) bool {
	var ws unix.WaitStatus
	got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	return err == nil && got == pid
}
