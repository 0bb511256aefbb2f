package main

import (
	"os"

	"github.com/corral-sh/corral/internal/logs"
)

// openDaemonLog opens the daemon's own log (daemon.log in the state
// directory, as corral up starts it), rotated by size: by default as a
// service's file, then as [corral] logs says once the daemon has read the
// configuration. The process's stdout and stderr point at the current file,
// again after each rotation, so what the Go runtime writes there (a panic)
// lands in it too. (The keeper, started once, keeps writing its rare lines
// to the file that was current then.)
func openDaemonLog(path string) (*logs.File, error) {
	lf, err := logs.OpenFile(path, logs.DefaultRotation())
	if err != nil {
		return nil, err
	}
	redirectStdio(lf.Current())
	lf.OnRotate(func(f *os.File) { redirectStdio(f) })
	return lf, nil
}
