//go:build unix && !linux

package proctree

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
)

// copyBufs are borrowed only while a pipe has data. A plain io.Copy keeps a
// buffer per stream for the life of the tree, which for a daemon with a
// hundred quiet services is several megabytes doing nothing. 64 KiB is a
// Linux pipe's default capacity: a full pipe is emptied in one read.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// copyPipe copies r (a pipe in the runtime poller) to w until EOF.
func copyPipe(w io.Writer, r *os.File) {
	rc, err := r.SyscallConn()
	if err != nil {
		io.Copy(w, r)
		return
	}
	pace := newPacer()
	for {
		var buf *[]byte
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			buf = copyBufs.Get().(*[]byte)
			n, rerr = syscall.Read(int(fd), *buf)
			if errors.Is(rerr, syscall.EAGAIN) {
				copyBufs.Put(buf)
				buf = nil
				pace.idle()
				return false // wait for readiness without holding the buffer
			}
			return true
		})
		if n > 0 {
			w.Write((*buf)[:n])
		}
		if buf != nil {
			copyBufs.Put(buf)
		}
		if err != nil || (rerr != nil && !errors.Is(rerr, syscall.EINTR)) || (n == 0 && rerr == nil) {
			return
		}
		if n > 0 {
			pace.read(n, len(*buf))
		}
	}
}
