//go:build !linux

package cgroupv2

import (
	"context"
	"errors"
)

// Detect reports that cgroups do not exist on this system.
func Detect() Info { return Info{Layout: None, Reason: "cgroups exist only on Linux"} }

// Probe is not supported on this system.
func Probe(parent string) error { return errors.ErrUnsupported }

// Gone reports false: no group exists here.
func Gone(err error) bool { return false }

// Group is not supported on this system.
type Group struct{ Dir string }

// Create is not supported on this system.
func Create(dir string) (*Group, error) { return nil, errors.ErrUnsupported }

// Open is not supported on this system.
func Open(dir string) (*Group, error) { return nil, errors.ErrUnsupported }

// Procs is not supported on this system.
func (g *Group) Procs() ([]int, error) { return nil, errors.ErrUnsupported }

// Kill is not supported on this system.
func (g *Group) Kill() error { return errors.ErrUnsupported }

// Freeze is not supported on this system.
func (g *Group) Freeze(ctx context.Context) error { return errors.ErrUnsupported }

// Thaw is not supported on this system.
func (g *Group) Thaw() error { return errors.ErrUnsupported }

// WaitEmpty is not supported on this system.
func (g *Group) WaitEmpty(ctx context.Context) error { return errors.ErrUnsupported }

// Remove is not supported on this system.
func (g *Group) Remove() error { return errors.ErrUnsupported }
