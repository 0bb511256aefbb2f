package watchdog

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

var pageSize = int64(os.Getpagesize())

// RSSCache sums the resident memory of a set of processes, keeping each
// one's /proc/PID/statm open between passes so that a pass costs one pread
// per process instead of open, read and close. An open /proc file stays
// bound to its process: after the process exits it fails, it never reads a
// newcomer that got the same PID. Owned by one goroutine.
type RSSCache struct {
	fds map[int]int
	buf []byte
}

// NewRSSCache returns an empty cache.
func NewRSSCache() *RSSCache { return &RSSCache{fds: map[int]int{}, buf: make([]byte, 128)} }

// Sum returns the total RSS of pids and the pids that could be read.
func (c *RSSCache) Sum(pids []int) (int64, []int) {
	var total int64
	alive := pids[:0:0]
	keep := make(map[int]bool, len(pids))
	for _, pid := range pids {
		fd, ok := c.fds[pid]
		if !ok {
			var err error
			fd, err = unix.Open("/proc/"+strconv.Itoa(pid)+"/statm", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			c.fds[pid] = fd
		}
		n, err := unix.Pread(fd, c.buf, 0)
		if err != nil || n == 0 {
			unix.Close(fd)
			delete(c.fds, pid)
			continue
		}
		// size resident shared text lib data dt (pages)
		f := bytes.Fields(c.buf[:n])
		if len(f) > 1 {
			pages, _ := strconv.ParseInt(string(f[1]), 10, 64)
			total += pages * pageSize
		}
		keep[pid] = true
		alive = append(alive, pid)
	}
	for pid, fd := range c.fds {
		if !keep[pid] {
			unix.Close(fd)
			delete(c.fds, pid)
		}
	}
	return total, alive
}

// Close releases every file.
func (c *RSSCache) Close() {
	for pid, fd := range c.fds {
		unix.Close(fd)
		delete(c.fds, pid)
	}
}
