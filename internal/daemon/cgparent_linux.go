package daemon

import (
	"path/filepath"

	"github.com/corral-sh/corral/proctree"
)

// cgroupParent is where this state directory's trees get their groups:
// corral/KEY beside the daemon's own cgroup. The key is what lets a daemon
// that lost its journal find them, wherever the earlier one ran.
func cgroupParent(key string) string {
	p, err := proctree.DefaultCgroupParent()
	if err != nil {
		return "" // no cgroup tier: proctree says why when it is asked for
	}
	return filepath.Join(p, key)
}
