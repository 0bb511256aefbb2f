package logs

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/corral-sh/corral/internal/statedir"
)

// What a Sink keeps in memory, by default and at most. The ring grows only
// as output arrives, so a quiet service costs nearly nothing.
const (
	DefaultLines  = 5000
	DefaultMemory = 1 << 20
	// MaxLineBytes cuts a line without an end (an endless progress bar, a
	// 100 MB blob): each MaxLineBytes of it is a line of its own.
	MaxLineBytes = 16 << 10
)

// lineOverhead is what a kept line costs beyond its text: the memory bound
// counts it, so that many short lines cannot hold more than it says.
const lineOverhead = int64(unsafe.Sizeof(Line{}))

func lineCost(text string) int64 { return int64(len(text)) + lineOverhead }

// Line is one line of output.
type Line struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"` // "stdout" or "stderr"
	Text   string    `json:"text"`
}

// Keep bounds what a Sink keeps in memory: the last Lines lines, at most
// Memory bytes of them (text and bookkeeping; the newest line is always
// kept).
type Keep struct {
	Lines  int
	Memory int64
}

func (k Keep) orDefault() Keep {
	if k.Lines <= 0 {
		k.Lines = DefaultLines
	}
	if k.Memory <= 0 {
		k.Memory = DefaultMemory
	}
	return k
}

// Sink collects one service's output.
type Sink struct {
	// mu guards every field below it, up to fileMu.
	mu        sync.Mutex
	ring      ring
	ringBytes int64
	keep      Keep
	seq       uint64
	subs      map[int]chan Line
	nextSub   int
	now       func() time.Time
	closed    bool

	// fileMu orders the file's writes as the lines are numbered: taken
	// before mu is let go, so that readers need not wait for the disk. It
	// guards fileBroken.
	fileMu     sync.Mutex
	fileBroken bool // a write failed: the file lacks lines the ring had

	file    *File  // nil: memory only; set once by NewSink
	fileErr error  // set once by NewSink, read-only after
	epoch   string // set once by NewSink, read-only after
}

// Options configure a Sink.
type Options struct {
	// File is the log file; "" keeps output in memory only. A sink starts
	// with the tail of the file (and of its rotated copies) in its ring, as
	// much as Keep allows.
	File string
	// Rotation of the file (DefaultRotation when MaxSize is 0).
	Rotation Rotation
	// Keep bounds the ring (DefaultLines and DefaultMemory for zeros).
	Keep Keep
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// NewSink returns a Sink.
func NewSink(o Options) *Sink {
	s := &Sink{subs: map[int]chan Line{}, now: o.Now, keep: o.Keep.orDefault()}
	if s.now == nil {
		s.now = time.Now
	}
	if o.File != "" {
		f, err := OpenFile(o.File, o.Rotation)
		if err != nil {
			// Writing through a symlink would let whoever planted it choose
			// what corral overwrites; the lines stay in memory only.
			s.fileErr = err
		} else {
			s.file = f
			s.preload()
		}
	}
	if s.epoch == "" {
		s.epoch = newEpoch()
	}
	return s
}

func newEpoch() string {
	var id [8]byte
	rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

// The numbering across daemon runs. A sink that closes cleanly, with every
// line it numbered in its file, leaves NAME.log.seq beside it: its epoch,
// its last number and the file's size then. The next sink of that file,
// finding the file still that size, numbers on in that epoch, the lines it
// preloads keeping the numbers they had: a follower that resumes across a
// daemon restart gets exactly what it had not seen. Without it (a crash, a
// write that failed, a file changed since) the new sink starts a new epoch
// and numbers its preloaded lines from 1, and a resume with the old epoch
// starts over at the oldest line kept (the epoch rule), never skipping.

type seqState struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
	Size  int64  `json:"size"`
}

func (s *Sink) statePath() string { return s.file.Path() + ".seq" }

// preload fills the ring from the file's tail. Called by NewSink.
func (s *Sink) preload() {
	dir, base := filepath.Split(s.file.Path())
	var st seqState
	if b, err := readSmall(dir, base+".seq"); err == nil && json.Unmarshal(b, &st) == nil && st.Epoch != "" && st.Size == s.file.Size() {
		s.epoch = st.Epoch
	}
	// Used once: from here on the file gets this sink's lines.
	os.Remove(s.statePath())
	lines, err := ReadTail(dir, strings.TrimSuffix(base, ".log"), s.keep.Lines, s.keep.Memory)
	if err != nil {
		s.epoch = ""
		return
	}
	first := uint64(1)
	if s.epoch != "" {
		if uint64(len(lines)) > st.Seq {
			lines = lines[uint64(len(lines))-st.Seq:]
		}
		first = st.Seq - uint64(len(lines)) + 1
	}
	for i, l := range lines {
		l.Seq = first + uint64(i)
		s.push(l)
	}
	s.seq = first + uint64(len(lines)) - 1
	if s.epoch != "" {
		s.seq = st.Seq
	}
}

func readSmall(dir, name string) ([]byte, error) {
	f, err := statedir.OpenFile(dir, name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4<<10))
}

// writeState records the numbering for the next sink of the file. Called
// with fileMu held.
func (s *Sink) writeState(seq uint64) {
	if s.fileBroken {
		os.Remove(s.statePath())
		return
	}
	b, _ := json.Marshal(seqState{Epoch: s.epoch, Seq: seq, Size: s.file.Size()})
	dir, base := filepath.Split(s.statePath())
	f, err := statedir.OpenFile(dir, base, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	f.Write(b)
	f.Close()
}

// Epoch names this sink's numbering of lines. A reader that resumes after
// a number of another epoch must start over, not skip. A sink numbers on
// in the epoch of the sink that closed its file cleanly before it (a
// daemon restarted), else starts a new one at 1 (see preload).
func (s *Sink) Epoch() string { return s.epoch }

// FileError says why the sink keeps no file (nil: it keeps one, or none
// was asked for).
func (s *Sink) FileError() error { return s.fileErr }

// Configure changes what the sink keeps in memory (a smaller bound drops
// the oldest lines at once) and how its file rotates.
func (s *Sink) Configure(k Keep, r Rotation) {
	s.mu.Lock()
	s.keep = k.orDefault()
	s.trim()
	s.mu.Unlock()
	if s.file != nil {
		s.file.SetRotation(r)
	}
}

// Close records the numbering beside the file for the next sink of it
// (NAME.log.seq) and closes the file once compressions are done. Output
// written after Close still reaches the ring and the file, and the record
// follows it, so a late line of a dying tree is neither lost nor misnumbered.
func (s *Sink) Close() error {
	s.mu.Lock()
	s.closed = true
	seq := s.seq
	s.fileMu.Lock()
	s.mu.Unlock()
	defer s.fileMu.Unlock()
	if s.file == nil {
		return nil
	}
	s.writeState(seq)
	return nil
}

// Writer returns an io.Writer for one stream ("stdout" or "stderr"). Each
// writer keeps its own partial line; one goroutine writes to it at a time
// (proctree's copier of that stream).
func (s *Sink) Writer(stream string) io.Writer { return &streamWriter{s: s, stream: stream} }

type streamWriter struct {
	s       *Sink
	stream  string
	partial []byte // the current line's latest state
	// cr: a '\r' was seen. The next visible byte starts the line over; a
	// '\n' ends it with its last state. Kept across writes, since a redraw
	// may be split between two of them.
	cr bool

	// One Write's completed lines, back to back, and where each ends: they
	// become one string, and each line a part of it, so a write of many
	// lines costs one allocation (redraws a progress bar discarded are not
	// in it, so the ring's count of bytes stays true).
	text []byte
	ends []int
	out  []byte // the file's bytes for them
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.text, w.ends = w.text[:0], w.ends[:0]
	for len(p) > 0 {
		i := bytes.IndexAny(p, "\r\n")
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		if len(seg) > 0 && w.cr {
			w.partial = w.partial[:0]
			w.cr = false
		}
		for len(seg) > 0 {
			if len(w.partial) == MaxLineBytes {
				w.end() // cut: what follows is a line of its own
			}
			take := min(MaxLineBytes-len(w.partial), len(seg))
			w.partial = append(w.partial, seg[:take]...)
			seg = seg[take:]
		}
		if i < 0 {
			break
		}
		if p[i] == '\n' {
			w.end()
			w.cr = false
		} else {
			w.cr = true
		}
		p = p[i+1:]
	}
	if len(w.ends) > 0 {
		w.s.add(w)
	}
	if cap(w.text) > 4*MaxLineBytes && len(w.text) < MaxLineBytes {
		w.text, w.out = nil, nil // a burst's buffers are not kept for a quiet stream
	}
	return n, nil
}

// end completes the partial line.
func (w *streamWriter) end() {
	w.text = append(w.text, w.partial...)
	w.ends = append(w.ends, len(w.text))
	w.partial = w.partial[:0]
}

// add numbers, keeps, sends and writes w's completed lines.
func (s *Sink) add(w *streamWriter) {
	text := string(w.text)
	s.mu.Lock()
	now := s.now()
	start := 0
	for _, end := range w.ends {
		s.seq++
		l := Line{Seq: s.seq, Time: now, Stream: w.stream, Text: text[start:end]}
		start = end
		s.push(l)
		for _, ch := range s.subs {
			select {
			case ch <- l:
			default: // a slow follower misses lines rather than stall the service
			}
		}
	}
	s.trim()
	last, closed := s.seq, s.closed
	if s.file == nil {
		s.mu.Unlock()
		return
	}
	s.fileMu.Lock()
	s.mu.Unlock()
	defer s.fileMu.Unlock()
	// One write for all of them: a prefix per line, the same for each.
	out := appendPrefix(w.out[:0], now, w.stream)
	pre := len(out)
	start = 0
	for i, end := range w.ends {
		if i > 0 {
			out = append(out, out[:pre]...)
		}
		out = append(append(out, text[start:end]...), '\n')
		start = end
	}
	w.out = out
	if _, err := s.file.Write(out); err != nil && !s.fileBroken {
		s.fileBroken = true
	}
	if closed {
		s.writeState(last)
	}
}

// push appends l to the ring. Called with mu held; trim bounds it after.
func (s *Sink) push(l Line) {
	s.ring.push(l)
	s.ringBytes += lineCost(l.Text)
}

// trim drops the oldest lines past the bounds. Called with mu held.
func (s *Sink) trim() {
	for s.ring.n > s.keep.Lines || (s.ringBytes > s.keep.Memory && s.ring.n > 1) {
		s.ringBytes -= lineCost(s.ring.pop().Text)
	}
}

// Tail returns the last n lines (all kept lines when n <= 0).
func (s *Sink) Tail(n int) []Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 || n > s.ring.n {
		n = s.ring.n
	}
	return s.ring.copyFrom(s.ring.n-n, nil)
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
// An after above Window.Last comes from another numbering and counts as 0.
// The ring is ordered by number, so the start is found by binary search
// and only what is sent is copied.
func (s *Sink) SubscribeAfter(after uint64, n int) (past []Line, w Window, ch <-chan Line, cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w = Window{First: s.seq + 1, Last: s.seq}
	if s.ring.n > 0 {
		w.First = s.ring.at(0).Seq
	}
	if after > s.seq {
		after = 0
	}
	from := sort.Search(s.ring.n, func(i int) bool { return s.ring.at(i).Seq > after })
	if n >= 0 && n < s.ring.n-from {
		from = s.ring.n - n
	}
	past = s.ring.copyFrom(from, past)
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

// ring is a circular buffer of lines that grows (by doubling) as lines
// come, so a quiet service's costs little.
type ring struct {
	buf  []Line
	head int // index of the oldest line
	n    int
}

func (r *ring) at(i int) *Line { return &r.buf[(r.head+i)%len(r.buf)] }

func (r *ring) push(l Line) {
	if r.n == len(r.buf) {
		grown := make([]Line, max(64, 2*len(r.buf)))
		r.copyFrom(0, grown[:0])
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = l
	r.n++
}

func (r *ring) pop() Line {
	l := r.buf[r.head]
	r.buf[r.head] = Line{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	if r.n == 0 {
		r.head = 0
	}
	if len(r.buf) > 64 && r.n < len(r.buf)/4 {
		// Shrunk bounds (or a burst long gone) give memory back.
		small := make([]Line, len(r.buf)/2)
		r.copyFrom(0, small[:0])
		r.buf, r.head = small, 0
	}
	return l
}

// copyFrom appends the lines from index i on to dst.
func (r *ring) copyFrom(i int, dst []Line) []Line {
	if r.n == 0 || i >= r.n {
		if dst == nil {
			return []Line{}
		}
		return dst
	}
	if dst == nil {
		dst = make([]Line, 0, r.n-i)
	}
	a := (r.head + i) % len(r.buf)
	end := r.head + r.n
	if end <= len(r.buf) {
		return append(dst, r.buf[a:end]...)
	}
	if a >= r.head {
		dst = append(dst, r.buf[a:]...)
		return append(dst, r.buf[:end-len(r.buf)]...)
	}
	return append(dst, r.buf[a:end-len(r.buf)]...)
}
