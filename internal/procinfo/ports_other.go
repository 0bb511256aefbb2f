//go:build !linux

package procinfo

import "errors"

// PortHolders is not implemented on this platform yet.
func PortHolders(port int) ([]int, error) { return nil, errors.ErrUnsupported }
