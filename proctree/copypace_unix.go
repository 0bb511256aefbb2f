//go:build unix

package proctree

import "time"

// A program that writes line by line (python -u, a logger flushing each
// record) would cost the daemon a wake-up, a read and a write of the log
// file per line. A pipe that keeps pouring out lines (a read at most
// runGap after the one before, for busyAfter on end) is therefore read
// every coalesce instead, until it is found empty: the lines of those
// milliseconds arrive in one read and are handled, and written, together.
// A quiet pipe, and a burst shorter than busyAfter (a traceback, a
// program's banner), is read at once, as it comes, so what it writes and
// what the other stream writes keep their order as closely as two pipes
// allow; only while a stream floods may its lines and the other stream's
// written within one coalesce interleave otherwise.
const (
	coalesce  = 10 * time.Millisecond
	busyAfter = 20 * time.Millisecond
	runGap    = 5 * time.Millisecond
	// minPause is the shortest wait worth a timer.
	minPause = 100 * time.Microsecond
)

// pacer spaces the reads of one pipe. While busy, the wait adapts to the
// writer so that it is never slowed: a pipe found half full after a wait (a
// writer faster than the reads) halves the wait, down to none; one found
// with little in it doubles it again, up to coalesce. At 1 MB/s of lines a
// pipe is read every coalesce; a writer of 100 MB/s is read back to back.
type pacer struct {
	busy  bool
	run   time.Time // when the current run of reads began (not busy)
	pause time.Duration
	last  time.Time // the previous read that returned data
	slept bool      // a wait came before this read
}

func newPacer() *pacer { return &pacer{pause: coalesce} }

// idle is told that the pipe was found empty: a flood, if any, is over
// (while not busy, a pipe read line by line is found empty after each).
func (p *pacer) idle() {
	if p.busy {
		p.busy, p.slept, p.run = false, false, time.Time{}
	}
}

// read is told of each read that returned n bytes into a buffer of size,
// and waits as long as the next read should wait.
func (p *pacer) read(n, size int) {
	now := time.Now()
	if !p.busy {
		if now.Sub(p.last) > runGap {
			p.run = now
		}
		if now.Sub(p.run) < busyAfter {
			p.last = now
			return
		}
		p.busy, p.slept = true, false
	}
	big, small := n >= size/2, n < size/8
	switch {
	case big && p.slept:
		if p.pause /= 2; p.pause < minPause {
			p.pause = 0
		}
	case small && (p.slept || p.pause == 0):
		p.pause = min(max(2*p.pause, minPause), coalesce)
	}
	p.slept = false
	if gap := now.Sub(p.last); !big && gap < p.pause {
		// More is coming: let it gather (data already there, big, is
		// read at once).
		time.Sleep(p.pause - gap)
		now, p.slept = now.Add(p.pause-gap), true
	}
	p.last = now
}
