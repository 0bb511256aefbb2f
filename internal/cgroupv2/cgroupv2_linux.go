package cgroupv2

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Detect inspects /proc/self/mountinfo and /proc/self/cgroup. It does not
// create anything; Probe checks writability.
func Detect() Info {
	info := Info{Layout: None}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		info.Reason = "cannot read /proc/self/mountinfo: " + err.Error()
		return info
	}
	defer f.Close()
	var v1, rootIsV2 bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts ... - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		switch fields[sep+1] {
		case "cgroup2":
			if info.Mount == "" || fields[4] == "/sys/fs/cgroup" {
				info.Mount = fields[4]
			}
			if fields[4] == "/sys/fs/cgroup" {
				rootIsV2 = true
			}
		case "cgroup":
			v1 = true
		}
	}
	switch {
	case rootIsV2 && !v1:
		info.Layout = Unified
	case info.Mount != "" && v1:
		info.Layout = Hybrid
	case info.Mount != "":
		info.Layout = Unified
	case v1:
		info.Layout = Legacy
	}
	if info.Mount == "" {
		info.Reason = "no cgroup2 filesystem is mounted"
		return info
	}
	self, err := selfPath()
	if err != nil {
		info.Reason = err.Error()
		return info
	}
	info.Self = self
	if _, err := os.Stat(filepath.Join(info.Mount, self, "cgroup.procs")); err != nil {
		// Inside a container the hierarchy may be namespaced differently
		// from the mount; corral cannot place anything reliably then.
		info.Reason = fmt.Sprintf("own cgroup %s is not visible under %s", self, info.Mount)
		return info
	}
	info.Usable = true
	return info
}

func selfPath() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("cgroupv2: read /proc/self/cgroup: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return strings.TrimSuffix(p, " (deleted)"), nil
		}
	}
	return "", errors.New("cgroupv2: this process has no cgroup v2 membership")
}

// Probe checks that groups can be created under parent (an absolute path in
// the cgroup filesystem) by creating parent if needed and a throwaway child.
func Probe(parent string) error {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("cgroupv2: create %s: %w", parent, err)
	}
	probe := filepath.Join(parent, fmt.Sprintf(".probe-%d", os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cgroupv2: create %s: %w", probe, err)
	}
	defer os.Remove(probe)
	if err := unix.Access(filepath.Join(probe, "cgroup.procs"), unix.W_OK); err != nil {
		return fmt.Errorf("cgroupv2: %s is not writable: %w", probe, err)
	}
	// The root group has no cgroup.kill, so the kernel's support shows only
	// in a child.
	if _, err := os.Stat(filepath.Join(probe, "cgroup.kill")); err != nil {
		return errors.New("cgroupv2: kernel has no cgroup.kill (needs Linux 5.14 or newer)")
	}
	return nil
}

// Gone reports whether err means the group no longer exists: ENOENT once
// removed, ENODEV for a file still open in a group that was removed.
func Gone(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV)
}

// Group is one cgroup directory.
type Group struct {
	// Dir is the absolute path of the group's directory.
	Dir string

	// removed is closed by Remove. Waiters select on it because a removed
	// group's cgroup.events sends no further notification: one the kernel
	// had deferred (it rate-limits them to one per 20 ms) is dropped.
	removed     chan struct{}
	removedOnce sync.Once
}

func newGroup(dir string) *Group { return &Group{Dir: dir, removed: make(chan struct{})} }

// Create makes a new, empty group dir. It fails if dir exists: a leftover
// group from an earlier run must be reaped, not reused.
func Create(dir string) (*Group, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroupv2: create group: %w", err)
	}
	return newGroup(dir), nil
}

// Open returns the group at dir, which must exist.
func Open(dir string) (*Group, error) {
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		return nil, fmt.Errorf("cgroupv2: open group: %w", err)
	}
	return newGroup(dir), nil
}

// OpenFD opens the group directory for clone3(CLONE_INTO_CGROUP).
func (g *Group) OpenFD() (int, error) {
	fd, err := unix.Open(g.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cgroupv2: open %s: %w", g.Dir, err)
	}
	return fd, nil
}

// Procs lists the processes in the group (not in its children).
func (g *Group) Procs() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(g.Dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("cgroupv2: list members: %w", err)
	}
	var pids []int
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		var line []byte
		if i < 0 {
			line, b = b, nil
		} else {
			line, b = b[:i], b[i+1:]
		}
		if pid, err := strconv.Atoi(string(line)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func (g *Group) write(file, val string) error {
	if err := os.WriteFile(filepath.Join(g.Dir, file), []byte(val), 0); err != nil {
		return fmt.Errorf("cgroupv2: write %s: %w", file, err)
	}
	return nil
}

// Kill sends SIGKILL to every process in the group and its descendants, in
// the kernel, atomically with respect to forks.
func (g *Group) Kill() error { return g.write("cgroup.kill", "1") }

// Events returns the keys of cgroup.events ("populated", "frozen").
func (g *Group) Events() (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(g.Dir, "cgroup.events"))
	if err != nil {
		return nil, fmt.Errorf("cgroupv2: read events: %w", err)
	}
	m := make(map[string]string, 2)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			m[k] = v
		}
	}
	return m, nil
}

// Populated reports whether any live process remains in the group or below.
func (g *Group) Populated() (bool, error) {
	ev, err := g.Events()
	if err != nil {
		return false, err
	}
	return ev["populated"] == "1", nil
}

// Freeze stops every process of the group and waits until the kernel reports
// the group frozen (or ctx ends). A frozen process cannot run, fork or exit
// on its own, but SIGKILL still ends it.
func (g *Group) Freeze(ctx context.Context) error {
	if err := g.write("cgroup.freeze", "1"); err != nil {
		return err
	}
	return g.waitEvent(ctx, "frozen", "1")
}

// Thaw lets a frozen group run again.
func (g *Group) Thaw() error { return g.write("cgroup.freeze", "0") }

// WaitEmpty returns when the group has no live process, or when ctx ends.
func (g *Group) WaitEmpty(ctx context.Context) error {
	return g.waitEvent(ctx, "populated", "0")
}

func (g *Group) waitEvent(ctx context.Context, key, want string) error {
	ch := make(chan struct{}, 1)
	cancel, err := Watch(g.Dir, func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return err
	}
	defer cancel()
	// A slow tick guards against a lost notification; inotify is the
	// normal path.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ev, err := g.Events()
		if err != nil {
			return err
		}
		if ev[key] == want {
			return nil
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-g.removed: // the next read fails with a Gone error
		case <-ctx.Done():
			return fmt.Errorf("cgroupv2: waiting for %s %s in %s: %w", key, want, g.Dir, ctx.Err())
		}
	}
}

// Remove deletes the (empty) group directory. The kernel may report EBUSY
// briefly after the last member died; Remove retries for a short while.
func (g *Group) Remove() error {
	var err error
	for i := 0; i < 50; i++ {
		err = unix.Rmdir(g.Dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			if g.removed != nil {
				g.removedOnce.Do(func() { close(g.removed) })
			}
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("cgroupv2: remove %s: %w", g.Dir, err)
}

// watcher multiplexes one inotify instance over every group the process
// watches: the per-user limit on inotify instances (often 128) is far below
// the number of services a daemon may run.
type watcher struct {
	f *os.File

	// mu guards fns and seq, and is held across inotify_add_watch and
	// inotify_rm_watch so that the kernel's watches match fns.
	mu  sync.Mutex
	fns map[int32]map[int]func()
	seq int
}

var (
	watchOnce sync.Once
	theWatch  *watcher
	watchErr  error
)

func getWatcher() (*watcher, error) {
	watchOnce.Do(func() {
		fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		if err != nil {
			watchErr = fmt.Errorf("cgroupv2: inotify: %w", err)
			return
		}
		// A non-blocking fd handed to os.NewFile joins the runtime poller,
		// so the reader goroutine does not pin an OS thread.
		theWatch = &watcher{f: os.NewFile(uintptr(fd), "inotify"), fns: map[int32]map[int]func(){}}
		go theWatch.loop()
	})
	return theWatch, watchErr
}

func (w *watcher) loop() {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int32(uint32(buf[off]) | uint32(buf[off+1])<<8 | uint32(buf[off+2])<<16 | uint32(buf[off+3])<<24)
			nameLen := int(uint32(buf[off+12]) | uint32(buf[off+13])<<8 | uint32(buf[off+14])<<16 | uint32(buf[off+15])<<24)
			off += unix.SizeofInotifyEvent + nameLen
			w.mu.Lock()
			fns := make([]func(), 0, len(w.fns[wd]))
			for _, fn := range w.fns[wd] {
				fns = append(fns, fn)
			}
			w.mu.Unlock()
			for _, fn := range fns {
				fn()
			}
		}
	}
}

// Watch calls fn (from the watcher goroutine; fn must not block) whenever
// dir's cgroup.events changes. The returned cancel stops the calls.
func Watch(dir string, fn func()) (cancel func(), err error) {
	w, err := getWatcher()
	if err != nil {
		return nil, err
	}
	// Adding under the lock: watches on one path share a descriptor, and a
	// concurrent cancel of the last other user would otherwise remove the
	// kernel watch this call was just handed.
	w.mu.Lock()
	wd, err := unix.InotifyAddWatch(int(w.f.Fd()), filepath.Join(dir, "cgroup.events"), unix.IN_MODIFY)
	if err != nil {
		w.mu.Unlock()
		return nil, fmt.Errorf("cgroupv2: watch %s: %w", dir, err)
	}
	w.seq++
	key := w.seq
	if w.fns[int32(wd)] == nil {
		w.fns[int32(wd)] = map[int]func(){}
	}
	w.fns[int32(wd)][key] = fn
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.fns[int32(wd)], key)
		if len(w.fns[int32(wd)]) == 0 {
			delete(w.fns, int32(wd))
			// Watches on one path share a descriptor; drop it only when the
			// last user is gone. A removed directory drops it by itself.
			unix.InotifyRmWatch(int(w.f.Fd()), uint32(wd))
		}
	}, nil
}
