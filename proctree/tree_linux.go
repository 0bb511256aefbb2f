package proctree

import (
	"fmt"

	"github.com/corral-sh/corral/internal/reaper"
)

func newBackend(id string, mode Containment, opts Options) (backend, error) {
	// Orphans of a tree must come to us: an init that never reaps (seen in
	// containers and microVMs) would keep them as zombies forever, and in
	// the process-group tier a double-forked daemon must stay in reach.
	if err := reaper.EnableSubreaper(); err != nil && mode == ForcePgroup {
		return nil, fmt.Errorf("proctree: %w", err)
	}
	switch mode {
	case ForceCgroup:
		return newCgroupBackend(id, opts)
	case ForcePgroup:
		return newPgroupBackend(id), nil
	}
	b, err := newCgroupBackend(id, opts)
	if err == nil {
		return b, nil
	}
	if opts.Logger != nil {
		opts.Logger.Debug("proctree: cgroup v2 unavailable, using process groups", "reason", err)
	}
	return newPgroupBackend(id), nil
}

// resolve makes newBackend's choice without creating a group (the probe of
// the parent runs once, as for Start).
func resolve(mode Containment, opts Options) (Mechanism, string, error) {
	if mode == ForcePgroup {
		return ProcessGroup, "", nil
	}
	_, _, err := usableParent(opts)
	switch {
	case err == nil:
		return Cgroup, "", nil
	case mode == ForceCgroup:
		return "", "", err
	}
	return ProcessGroup, err.Error(), nil
}

// shimHost is the backend a shim works with: the process-group tier's.
type shimHost = *pgroupBackend

// shimHost: Linux's process-group tier runs each tree under a shim.
func (b *pgroupBackend) shimHost() shimHost { return b }
