package procinfo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, which Linux fixes at 100 for every architecture Go
// supports; /proc reports start times in these units.
const clockTicks = 100

var pageSize = int64(os.Getpagesize())

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// readProc reads a whole /proc file with raw syscalls: os.Open would try to
// register every file with the poller, which doubles the syscalls of a scan.
func readProc(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	defer unix.Close(fd)
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if errors.Is(err, unix.ESRCH) {
				return nil, ErrNotFound
			}
			return nil, err
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func procPath(pid int, file string) string {
	return "/proc/" + strconv.Itoa(pid) + "/" + file
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b, err := readProc(procPath(pid, "stat"), *bp)
	if b != nil {
		*bp = b
	}
	if err != nil {
		return Stat{}, err
	}
	return parseStat(pid, b)
}

// parseStat parses the stat line. The command name sits in parentheses and
// may itself contain spaces and parentheses, so fields are counted from the
// last ')'.
func parseStat(pid int, b []byte) (Stat, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open || end+2 > len(b) {
		return Stat{}, fmt.Errorf("procinfo: malformed stat for pid %d", pid)
	}
	s := Stat{PID: pid, Comm: string(b[open+1 : end])}
	rest := b[end+2:]
	// Fields after comm, 0-based: 0 state, 1 ppid, 2 pgrp, 3 session,
	// 11-14 utime, stime, cutime, cstime (ticks), 19 starttime, 21 rss
	// (pages).
	field := 0
	for field <= 21 && len(rest) > 0 {
		i := bytes.IndexByte(rest, ' ')
		var f []byte
		if i < 0 {
			f, rest = rest, nil
		} else {
			f, rest = rest[:i], rest[i+1:]
		}
		switch field {
		case 0:
			if len(f) > 0 {
				s.State = f[0]
			}
		case 1:
			s.PPID = atoi(f)
		case 2:
			s.PGID = atoi(f)
		case 3:
			s.SID = atoi(f)
		case 11, 12, 13, 14:
			s.CPU += time.Duration(atoi(f)) * (time.Second / clockTicks)
		case 19:
			s.StartTicks = uint64(atoi(f))
		case 21:
			s.RSS = int64(atoi(f)) * pageSize
		}
		field++
	}
	if field <= 21 {
		return Stat{}, fmt.Errorf("procinfo: short stat for pid %d", pid)
	}
	return s, nil
}

func atoi(b []byte) int {
	n, neg := 0, false
	for i, c := range b {
		if i == 0 && c == '-' {
			neg = true
			continue
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		return -n
	}
	return n
}

// PIDs lists every process id in /proc.
func PIDs() ([]int, error) {
	f, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("procinfo: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("procinfo: list /proc: %w", err)
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// statFiles keeps /proc/PID/stat open between snapshots, so a snapshot
// costs one pread per process instead of open, read and close. An open
// /proc file stays bound to its process: once that exits the read fails and
// the entry is dropped, so a newcomer with the same PID is opened afresh.
var statFiles = struct {
	sync.Mutex // guards fds and buf; held for a whole snapshot
	fds        map[int]int
	buf        []byte
}{fds: map[int]int{}, buf: make([]byte, 1024)}

// maxStatFiles bounds the descriptors the cache may hold.
var maxStatFiles = sync.OnceValue(func() int {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return 256
	}
	return int(min(rl.Cur/4, 16384))
})

// Snapshot reads the stat of every process. Processes that exit while the
// snapshot is taken are left out.
func Snapshot() ([]Stat, error) {
	scans.Add(1)
	pids, err := PIDs()
	if err != nil {
		return nil, err
	}
	c := &statFiles
	c.Lock()
	defer c.Unlock()
	out := make([]Stat, 0, len(pids))
	present := make(map[int]struct{}, len(pids))
	for _, pid := range pids {
		present[pid] = struct{}{}
		fd, cached := c.fds[pid]
		var n int
		if cached {
			if n, err = unix.Pread(fd, c.buf, 0); err != nil || n == 0 {
				unix.Close(fd)
				delete(c.fds, pid)
				cached = false
			}
		}
		if !cached {
			if fd, err = unix.Open(procPath(pid, "stat"), unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
				continue
			}
			if n, err = unix.Pread(fd, c.buf, 0); err != nil || n == 0 {
				unix.Close(fd)
				continue
			}
			if len(c.fds) < maxStatFiles() {
				c.fds[pid] = fd
			} else {
				unix.Close(fd)
			}
		}
		s, err := parseStat(pid, c.buf[:n])
		if err != nil {
			continue
		}
		out = append(out, s)
	}
	for pid, fd := range c.fds {
		if _, ok := present[pid]; !ok {
			unix.Close(fd)
			delete(c.fds, pid)
		}
	}
	return out, nil
}

// Cmdline returns the argument vector of pid; empty for kernel threads and
// zombies.
func Cmdline(pid int) ([]string, error) {
	b, err := readProc(procPath(pid, "cmdline"), make([]byte, 0, 256))
	if err != nil {
		return nil, err
	}
	return splitNUL(b), nil
}

// Marker returns the value of CORRAL_INSTANCE in pid's initial environment,
// or "" when it has none or the environment cannot be read (another user's
// process, a zombie, a kernel thread).
func Marker(pid int) string {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b, err := readProc(procPath(pid, "environ"), *bp)
	if b != nil {
		*bp = b
	}
	if err != nil {
		return ""
	}
	return markerIn(b)
}

// ReadMarkers returns the corral variables of pid's initial environment
// (all empty when it cannot be read).
func ReadMarkers(pid int) Markers {
	b, err := readProc(procPath(pid, "environ"), make([]byte, 0, 4096))
	if err != nil {
		return Markers{}
	}
	return markersIn(b)
}

// CgroupV2Path returns pid's path in the cgroup v2 hierarchy (the "0::"
// line of /proc/PID/cgroup). A zombie keeps reporting the cgroup it died in.
func CgroupV2Path(pid int) (string, error) {
	b, err := readProc(procPath(pid, "cgroup"), make([]byte, 0, 512))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return strings.TrimSuffix(p, " (deleted)"), nil
		}
	}
	return "", fmt.Errorf("procinfo: pid %d has no cgroup v2 membership", pid)
}

var bootOnce = sync.OnceValues(func() (string, time.Time) {
	id := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		id = strings.TrimSpace(string(b))
	}
	var bt time.Time
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "btime "); ok {
				if sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
					bt = time.Unix(sec, 0)
				}
			}
		}
	}
	return id, bt
})

// BootID identifies the current boot; identities from another boot never match.
func BootID() string { id, _ := bootOnce(); return id }

// StartTime converts StartTicks to wall-clock time.
func StartTime(ticks uint64) time.Time {
	_, bt := bootOnce()
	return bt.Add(time.Duration(ticks) * time.Second / clockTicks)
}
