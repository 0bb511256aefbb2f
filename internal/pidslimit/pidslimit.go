// Package pidslimit owns kernel limits on the number of processes of a
// tree: a group in the cgroup v1 "pids" hierarchy (present on hybrid and
// legacy hosts, writable as root) with pids.max set. The leader is put in
// it at proctree's gate, before it runs, so every descendant is counted and
// a fork past the limit fails in the kernel. Where no such hierarchy is
// usable, New returns an error and corral's accounting is the only guard.
package pidslimit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Group is one tree's pids group.
type Group struct {
	Dir string
}

var root = sync.OnceValues(func() (string, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	mount := ""
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		for i, x := range f {
			if x == "-" && i+3 < len(f) && f[i+1] == "cgroup" && strings.Contains(","+f[i+3]+",", ",pids,") {
				mount = f[4]
			}
		}
	}
	if mount == "" {
		return "", errors.New("pidslimit: no cgroup v1 pids hierarchy is mounted")
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(cg), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && strings.Contains(","+parts[1]+",", ",pids,") {
			return filepath.Join(mount, parts[2], "corral"), nil
		}
	}
	return "", errors.New("pidslimit: this process is in no pids group")
})

// Available says where trees' pids groups go, or why there are none.
func Available() (string, error) {
	dir, err := root()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("pidslimit: %w", err)
	}
	return dir, nil
}

// Probe checks that a group can really be created and limited here (the
// base directory may exist while this user cannot write in it).
func Probe() (string, error) {
	base, err := Available()
	if err != nil {
		return "", err
	}
	g, err := New(fmt.Sprintf(".probe-%d", os.Getpid()), 1<<20)
	if err != nil {
		return "", err
	}
	g.Remove()
	return base, nil
}

// New creates the group of instance with pids.max = max.
func New(instance string, max int) (*Group, error) {
	base, err := Available()
	if err != nil {
		return nil, err
	}
	g := &Group{Dir: filepath.Join(base, instance)}
	if err := os.Mkdir(g.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("pidslimit: %w", err)
	}
	if err := os.WriteFile(filepath.Join(g.Dir, "pids.max"), []byte(strconv.Itoa(max)), 0); err != nil {
		os.Remove(g.Dir)
		return nil, fmt.Errorf("pidslimit: set pids.max: %w", err)
	}
	return g, nil
}

// Add moves pid (and so all it will spawn) into the group.
func (g *Group) Add(pid int) error {
	if err := os.WriteFile(filepath.Join(g.Dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("pidslimit: add %d: %w", pid, err)
	}
	return nil
}

// Current returns the number of tasks counted in the group.
func (g *Group) Current() (int, error) {
	b, err := os.ReadFile(filepath.Join(g.Dir, "pids.current"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Remove deletes the group once its processes are gone (retrying briefly:
// exiting tasks are uncharged a moment after they die).
func (g *Group) Remove() error {
	var err error
	for i := 0; i < 100; i++ {
		if err = os.Remove(g.Dir); err == nil || os.IsNotExist(err) {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("pidslimit: remove %s: %w", g.Dir, err)
}

// Refused returns how many forks the kernel has refused in instance's group
// because of pids.max (the "max" line of pids.events); ok is false when the
// instance has no group. A tree held at its limit may show fewer members
// than the limit (intermediates hold slots briefly); refusals are the
// reliable sign that it tries to grow past it.
func Refused(instance string) (n int, ok bool) {
	base, err := root()
	if err != nil {
		return 0, false
	}
	b, err := os.ReadFile(filepath.Join(base, instance, "pids.events"))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "max "); found {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return n, true
}
