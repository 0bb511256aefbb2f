//go:build !unix

package proctree

import (
	"io"
	"os"
)

func copyPipe(w io.Writer, r *os.File) { io.Copy(w, r) }
