package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// redirectStdio makes descriptors 1 and 2 refer to f.
func redirectStdio(f *os.File) {
	fd := int(f.Fd())
	unix.Dup3(fd, 1, 0)
	unix.Dup3(fd, 2, 0)
}
