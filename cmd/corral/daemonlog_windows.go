package main

import (
	"os"
	"sync"

	"golang.org/x/sys/windows"
)

var closeInherited sync.Once

// redirectStdio makes the process's standard output and error handles f's,
// for what the Go runtime writes there. The handles it was started with
// (daemon.log, which corral up opened) are closed first: Windows renames no
// file another handle holds open, and rotation renames it.
func redirectStdio(f *os.File) {
	closeInherited.Do(func() {
		os.Stdout.Close()
		os.Stderr.Close()
	})
	h := windows.Handle(f.Fd())
	windows.SetStdHandle(windows.STD_OUTPUT_HANDLE, h)
	windows.SetStdHandle(windows.STD_ERROR_HANDLE, h)
}
