package proctree

import "fmt"

// On macOS there is no kernel container an unprivileged process can use:
// trees are process groups plus the instance marker, found by scanning
// sysctl(kern.proc.all). Without a subreaper, orphans go to launchd, which
// reaps them; a daemon that clears its environment and leaves the group is
// out of reach. docs/architecture.md says so.
func newBackend(id string, mode Containment, opts Options) (backend, error) {
	if mode == ForceCgroup {
		return nil, fmt.Errorf("proctree: cgroup containment exists only on Linux")
	}
	return newPgroupBackend(id), nil
}

func resolve(mode Containment, opts Options) (Mechanism, string, error) {
	if mode == ForceCgroup {
		return "", "", fmt.Errorf("proctree: cgroup containment exists only on Linux")
	}
	return ProcessGroup, "", nil
}

// shimHost: without PR_SET_CHILD_SUBREAPER there is no shim here.
func (b *pgroupBackend) shimHost() shimHost { return nil }
