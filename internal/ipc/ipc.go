package ipc

import (
	"context"
	"net"
)

// Dialer returns a DialContext function that ignores the address and
// connects to the control endpoint at path (from Path).
func Dialer(path string) func(ctx context.Context, _, _ string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) { return Dial(ctx, path) }
}
