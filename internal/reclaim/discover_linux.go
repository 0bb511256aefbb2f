package reclaim

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/corral-sh/corral/internal/cgroupv2"
	"github.com/corral-sh/corral/internal/journal"
)

// maxWalk bounds the cgroup walk: a host has hundreds of groups, a busy one
// thousands; past this many the walk stops and says so.
const maxWalk = 100000

// ourNamespace says whether the members of group g live in our pid
// namespace (an empty group is ours: nothing in it to take).
func ourNamespace(g string) bool {
	b, err := os.ReadFile(filepath.Join(g, "cgroup.procs"))
	if err != nil {
		return true
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 && !samePidNS(pid) {
			return false
		}
	}
	return true
}

// discoverGroups walks the whole cgroup2 mount, not only beside this
// process: an earlier daemon may have run in another cgroup (another login
// session, a systemd unit) and made its groups there.
func discoverGroups(key string) ([]*journal.Instance, error) {
	info := cgroupv2.Detect()
	if info.Mount == "" {
		return nil, nil
	}
	var out []*journal.Instance
	seen, walkCut := 0, false
	err := filepath.WalkDir(info.Mount, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a group that vanished mid-walk, or one we may not read
		}
		if !d.IsDir() {
			return nil
		}
		if seen++; seen > maxWalk {
			walkCut = true
			return fs.SkipAll
		}
		if d.Name() != key || filepath.Base(filepath.Dir(p)) != "corral" {
			return nil
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return fs.SkipDir
		}
		for _, e := range ents {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			g := filepath.Join(p, e.Name())
			if !ourNamespace(g) {
				continue // a container's corral with the same state path
			}
			svc, id, ok := strings.Cut(e.Name(), "@")
			if !ok {
				svc, id = "", e.Name()
			}
			out = append(out, &journal.Instance{ID: id, Service: svc, Cgroup: filepath.Join(p, e.Name())})
		}
		return fs.SkipDir
	})
	if err == nil && walkCut {
		err = fmt.Errorf("reclaim: the cgroup walk stopped after %d groups; groups past them were not looked at", maxWalk)
	}
	return out, err
}
