//go:build !linux

package daemon

// cgroupParent is "": only Linux has cgroups.
func cgroupParent(key string) string { return "" }
