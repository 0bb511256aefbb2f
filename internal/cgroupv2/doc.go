// Package cgroupv2 owns corral's use of the cgroup v2 hierarchy on Linux:
// detecting the host's layout (unified, hybrid, legacy, none), creating and
// removing leaf groups under corral's own subtree, listing, freezing and
// killing their members, and watching cgroup.events for the moment a group
// becomes empty.
//
// On other systems every function returns errors.ErrUnsupported.
package cgroupv2
