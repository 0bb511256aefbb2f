//go:build !windows

package bootsvc

// fakeDaemon: no service test on this OS runs this binary as the daemon.
func fakeDaemon([]string) int { return 2 }
