package reclaim

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/corral-sh/corral/internal/cgroupv2"
	"github.com/corral-sh/corral/internal/journal"
)

// maxWalk bounds the cgroup walk: a host has hundreds of groups, a busy one
// thousands; past this many the walk stops and says so.
const maxWalk = 100000

// discoverGroups walks the whole cgroup2 mount, not only beside this
// process: an earlier daemon may have run in another cgroup (another login
// session, a systemd unit) and made its groups there.
func discoverGroups(key string) ([]*journal.Instance, error) {
	info := cgroupv2.Detect()
	if info.Mount == "" {
		return nil, nil
	}
	var out []*journal.Instance
	seen := 0
	err := filepath.WalkDir(info.Mount, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a group that vanished mid-walk, or one we may not read
		}
		if !d.IsDir() {
			return nil
		}
		if seen++; seen > maxWalk {
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
			svc, id, ok := strings.Cut(e.Name(), "@")
			if !ok {
				svc, id = "", e.Name()
			}
			out = append(out, &journal.Instance{ID: id, Service: svc, Cgroup: filepath.Join(p, e.Name())})
		}
		return fs.SkipDir
	})
	return out, err
}
