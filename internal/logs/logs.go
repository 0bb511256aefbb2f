package logs

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"sort"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/corral-sh/corral/internal/statedir"
)

// Limits bound a Sink's memory. The ring grows only as output arrives, so a
// quiet service costs nearly nothing.
const (
	MaxLines     = 500
	MaxRingBytes = 64 << 10
	MaxLineBytes = 16 << 10
)

// Line is one line of output.
type Line struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"` // "stdout" or "stderr"
	Text   string    `json:"text"`
}

// Sink collects one service's output.
type Sink struct {
	// mu guards every field below.
	mu        sync.Mutex
	ring      []Line // oldest first
	ringBytes int
	seq       uint64
	file      io.WriteCloser // nil: memory only
	subs      map[int]chan Line
	nextSub   int
	now       func() time.Time

	fileErr error  // set once by NewSink, read-only after
	epoch   string // set once by NewSink, read-only after
}

// Options configure a Sink.
type Options struct {
	// File is the log file; "" keeps output in memory only.
	File string
	// MaxFileMB is the size at which the file is rotated (default 10).
	MaxFileMB int
	// Backups is how many rotated files are kept (default 3).
	Backups int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// NewSink returns a Sink.
func NewSink(o Options) *Sink {
	var id [8]byte
	rand.Read(id[:])
	s := &Sink{subs: map[int]chan Line{}, now: o.Now, epoch: hex.EncodeToString(id[:])}
	if s.now == nil {
		s.now = time.Now
	}
	if o.File != "" {
		if o.MaxFileMB <= 0 {
			o.MaxFileMB = 10
		}
		if o.Backups <= 0 {
			o.Backups = 3
		}
		if err := statedir.Refuse(o.File); err != nil {
			// Writing through a symlink would let whoever planted it choose
			// what corral overwrites; the lines stay in memory only.
			s.fileErr = err
		} else {
			s.file = &lumberjack.Logger{Filename: o.File, MaxSize: o.MaxFileMB, MaxBackups: o.Backups}
		}
	}
	return s
}

// Epoch names this sink's numbering of lines, which starts at 1 with the
// sink (a new daemon, a service defined again): a reader that resumes
// after a number of another epoch must start over, not skip.
func (s *Sink) Epoch() string { return s.epoch }

// FileError says why the sink keeps no file (nil: it keeps one, or none
// was asked for).
func (s *Sink) FileError() error { return s.fileErr }

// Close closes the file.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil {
		return s.file.Close()
	}
	return nil
}

// Writer returns an io.Writer for one stream ("stdout" or "stderr"). Each
// writer keeps its own partial line.
func (s *Sink) Writer(stream string) io.Writer { return &streamWriter{s: s, stream: stream} }

type streamWriter struct {
	s       *Sink
	stream  string
	partial []byte // the current line's latest state; only its writer touches it
	// cr: a '\r' was seen. The next visible byte starts the line over; a
	// '\n' ends it with its last state. Kept across writes, since a redraw
	// may be split between two of them.
	cr bool
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexAny(p, "\r\n")
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		if len(seg) > 0 {
			if w.cr {
				w.partial = w.partial[:0]
				w.cr = false
			}
			w.partial = append(w.partial, seg...)
			if len(w.partial) > MaxLineBytes {
				w.s.add(w.stream, w.partial[:MaxLineBytes])
				w.partial = w.partial[:0]
			}
		}
		if i < 0 {
			break
		}
		if p[i] == '\n' {
			w.s.add(w.stream, w.partial)
			w.partial, w.cr = w.partial[:0], false
		} else {
			w.cr = true
		}
		p = p[i+1:]
	}
	return n, nil
}

func (s *Sink) add(stream string, text []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	l := Line{Seq: s.seq, Time: s.now(), Stream: stream, Text: string(text)}
	s.ring = append(s.ring, l)
	s.ringBytes += len(l.Text)
	for len(s.ring) > MaxLines || (s.ringBytes > MaxRingBytes && len(s.ring) > 1) {
		s.ringBytes -= len(s.ring[0].Text)
		s.ring[0] = Line{}
		s.ring = s.ring[1:]
	}
	if s.file != nil {
		buf := make([]byte, 0, len(text)+1)
		buf = append(append(buf, text...), '\n')
		s.file.Write(buf)
	}
	for _, ch := range s.subs {
		select {
		case ch <- l:
		default: // a slow follower misses lines rather than stall the service
		}
	}
}

// Tail returns the last n lines (all kept lines when n <= 0).
func (s *Sink) Tail(n int) []Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 || n > len(s.ring) {
		n = len(s.ring)
	}
	out := make([]Line, n)
	copy(out, s.ring[len(s.ring)-n:])
	return out
}

// Subscribe returns the lines written from now on and a cancel function.
// The tail as of the subscription is returned too (the last tail lines,
// all kept when tail < 0), so that a reader can look at the past and the
// future without a gap.
func (s *Sink) Subscribe(tail int) (past []Line, ch <-chan Line, cancel func()) {
	past, _, ch, cancel = s.SubscribeAfter(0, tail)
	return past, ch, cancel
}

// Window is what a subscription found kept when it began.
type Window struct {
	// First is the number of the oldest line kept, or Last+1 when none is:
	// the lowest number a reader that resumes can still get.
	First uint64
	// Last is the number of the newest line (0: none yet).
	Last uint64
}

// SubscribeAfter is Subscribe for a reader that resumes: past holds the
// kept lines numbered above after (only the last n of those when n >= 0).
// An after above Window.Last comes from another numbering (a sink numbers
// from 1, so a new daemon's lines restart) and counts as 0. The ring is
// ordered by number, so the start is found by binary search and only what
// is sent is copied.
func (s *Sink) SubscribeAfter(after uint64, n int) (past []Line, w Window, ch <-chan Line, cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w = Window{First: s.seq + 1, Last: s.seq}
	if len(s.ring) > 0 {
		w.First = s.ring[0].Seq
	}
	if after > s.seq {
		after = 0
	}
	kept := s.ring[sort.Search(len(s.ring), func(i int) bool { return s.ring[i].Seq > after }):]
	if n >= 0 && n < len(kept) {
		kept = kept[len(kept)-n:]
	}
	past = append(past, kept...)
	c := make(chan Line, 256)
	id := s.nextSub
	s.nextSub++
	s.subs[id] = c
	return past, w, c, func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}
}
