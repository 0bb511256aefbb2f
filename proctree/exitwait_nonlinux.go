//go:build !linux

package proctree

// awaitExit returns at once: exec.Cmd.Wait does the waiting here.
func awaitExit(pid int) {}
