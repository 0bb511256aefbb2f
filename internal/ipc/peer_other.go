//go:build !linux && !darwin && !windows

package ipc

import (
	"errors"
	"fmt"
)

func peerOf(fd uintptr) (Peer, error) {
	return Peer{}, fmt.Errorf("peer credentials on this platform: %w", errors.ErrUnsupported)
}
