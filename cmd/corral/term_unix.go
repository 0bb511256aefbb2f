//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

func fileWidth(f *os.File) int {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 0 // not a terminal
	}
	return int(ws.Col)
}
