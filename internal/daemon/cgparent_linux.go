package daemon

import (
	"os"
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

// removeKeyGroup removes the state directory's corral/KEY group once it is
// empty (rmdir fails on a group that still holds a tree's group, which then
// stays, named by the verification). Called when the daemon ends however it
// ends, and by the keeper after its reap: otherwise every state directory
// that ever ran leaves an empty group behind.
func removeKeyGroup(key string) {
	if p := cgroupParent(key); p != "" {
		os.Remove(p)
	}
}
