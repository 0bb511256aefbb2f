package cgroupv2

// Layout names how cgroups are mounted on this host.
type Layout string

const (
	// Unified: cgroup2 is mounted at /sys/fs/cgroup and no v1 hierarchy exists.
	Unified Layout = "unified"
	// Hybrid: v1 controllers at /sys/fs/cgroup/*, cgroup2 beside them
	// (usually /sys/fs/cgroup/unified) without controllers.
	Hybrid Layout = "hybrid"
	// Legacy: only v1 hierarchies.
	Legacy Layout = "legacy"
	// None: no cgroup filesystem is mounted.
	None Layout = "none"
)

// Info describes what Detect found.
type Info struct {
	Layout Layout
	// Mount is where cgroup2 is mounted ("" when it is not).
	Mount string
	// Self is this process's path inside the cgroup2 hierarchy, e.g. "/" or
	// "/user.slice/user-1000.slice/session-2.scope".
	Self string
	// Usable reports whether corral can create groups, spawn into them and
	// kill them here; Reason says why not when it cannot.
	Usable bool
	Reason string
}
