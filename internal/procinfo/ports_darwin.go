package procinfo

import "errors"

// PortHolders is not implemented on this platform yet.
func PortHolders(port int) (pids []int, listening bool, err error) {
	return nil, false, errors.ErrUnsupported
}
