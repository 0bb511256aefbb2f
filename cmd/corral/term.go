package main

import (
	"bytes"
	"io"
	"os"

	"github.com/corral-sh/corral/internal/render"
)

// termWidth is the width of the terminal w writes to, or 0 when w is not
// a terminal (a pipe, a file, a test's buffer): then nothing is cut.
func termWidth(w io.Writer) int {
	if fw, ok := w.(*fitWriter); ok {
		return fw.width
	}
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	return fileWidth(f)
}

// fitWriter cuts every line written through it to width columns (0:
// leaves them whole); Flush writes a last line without a newline.
type fitWriter struct {
	w     io.Writer
	width int
	buf   []byte
}

func newFitWriter(w io.Writer) *fitWriter { return &fitWriter{w: w, width: termWidth(w)} }

func (f *fitWriter) Write(p []byte) (int, error) {
	if f.width <= 0 {
		return f.w.Write(p)
	}
	f.buf = append(f.buf, p...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if _, err := io.WriteString(f.w, render.Fit(string(f.buf[:i]), f.width)+"\n"); err != nil {
			return 0, err
		}
		f.buf = f.buf[i+1:]
	}
}

func (f *fitWriter) Flush() error {
	if len(f.buf) == 0 {
		return nil
	}
	_, err := io.WriteString(f.w, render.Fit(string(f.buf), f.width))
	f.buf = nil
	return err
}
