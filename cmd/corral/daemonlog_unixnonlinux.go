//go:build unix && !linux

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// redirectStdio makes descriptors 1 and 2 refer to f.
func redirectStdio(f *os.File) {
	fd := int(f.Fd())
	unix.Dup2(fd, 1)
	unix.Dup2(fd, 2)
}
