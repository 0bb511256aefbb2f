//go:build !linux

package daemon

// cgroupParent is "": only Linux has cgroups.
func cgroupParent(key string) string { return "" }

// removeKeyGroup does nothing: there are no cgroups here.
func removeKeyGroup(key string) {}
