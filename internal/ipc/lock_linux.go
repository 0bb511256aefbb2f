package ipc

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockHeld finds the lock in /proc/locks, which names the flock(2) holder
// of each inode: a pid in a stale lock file that now belongs to another
// process is not taken for the daemon. Only the inode number is compared:
// on overlayfs the lock is recorded on the underlying file's device.
func lockHeld(st *syscall.Stat_t, pid int) (int, bool) {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return pid, alive(pid)
	}
	defer f.Close()
	ino := strconv.FormatUint(st.Ino, 10)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] == "->" || fs[1] != "FLOCK" {
			continue
		}
		id := strings.Split(fs[5], ":")
		if id[len(id)-1] != ino {
			continue
		}
		if p, err := strconv.Atoi(fs[4]); err == nil && p > 0 {
			return p, true
		}
		return pid, true
	}
	return 0, false
}
