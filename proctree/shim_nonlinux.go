//go:build !linux

package proctree

import "errors"

// Only Linux has PR_SET_CHILD_SUBREAPER: elsewhere the process-group tier
// runs without a shim, as before (docs/architecture.md says what that
// misses).
type shimConn struct{}

// shimHost is never non-nil here: no backend takes a shim.
type shimHost = *noShim

type noShim struct{}

func useShim(backend, Options) bool { return false }

func (t *Tree) startShim(func(Gated) error) error {
	return errors.New("proctree: no shim on this platform")
}

func (t *Tree) waitShim() {}
