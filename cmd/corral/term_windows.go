package main

import (
	"os"

	"golang.org/x/sys/windows"
)

func fileWidth(f *os.File) int {
	var info windows.ConsoleScreenBufferInfo
	if err := windows.GetConsoleScreenBufferInfo(windows.Handle(f.Fd()), &info); err != nil {
		return 0 // not a console
	}
	// One column less: a console moves to the next line after its last
	// column, and the newline would then leave an empty one.
	return int(info.Window.Right - info.Window.Left)
}
