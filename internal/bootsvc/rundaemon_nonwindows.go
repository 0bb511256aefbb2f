//go:build !windows

package bootsvc

import "context"

// RunDaemon runs the daemon. Only Windows has a service protocol a daemon
// must answer (see its version); systemd and launchd just signal it.
func RunDaemon(run func(ctx context.Context) error) error {
	return run(context.Background())
}
