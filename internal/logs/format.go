package logs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/corral-sh/corral/internal/statedir"
)

// The log file keeps every line with when corral read it and which stream
// it came from, in a form people read and programs parse back:
//
//	2026-12-02T10:04:05.123Z out | Running on local URL: http://127.0.0.1:7860
//	2026-12-02T10:04:05.124Z err | Loading weights: 100%
//
// The time is UTC with milliseconds; "out" is stdout, "err" stderr; the
// text follows " | " unchanged to the end of the line. A line without
// that prefix (a file corral wrote before it kept one) reads back as
// stdout of an unknown (zero) time.

const (
	timeLayout = "2006-01-02T15:04:05.000Z"
	prefixLen  = len(timeLayout) + len(" out | ")
)

// StreamMark is the file's name of a stream: "out" or "err".
func StreamMark(stream string) string {
	if stream == "stderr" {
		return "err"
	}
	return "out"
}

// appendPrefix appends a line's prefix for a time and stream to buf.
func appendPrefix(buf []byte, t time.Time, stream string) []byte {
	buf = t.UTC().AppendFormat(buf, timeLayout)
	buf = append(buf, ' ')
	buf = append(buf, StreamMark(stream)...)
	return append(buf, " | "...)
}

// FormatLine is l as the log file has it, without the newline.
func FormatLine(l Line) string {
	return string(append(appendPrefix(nil, l.Time, l.Stream), l.Text...))
}

// ParseLine reads one line of a log file (without its newline) back:
// time, stream and text; Seq is 0. A line without corral's prefix is
// stdout of an unknown (zero) time.
func ParseLine(b []byte) Line {
	if len(b) >= prefixLen && b[len(timeLayout)] == ' ' && string(b[len(timeLayout)+4:prefixLen]) == " | " {
		var stream string
		switch string(b[len(timeLayout)+1 : len(timeLayout)+4]) {
		case "out":
			stream = "stdout"
		case "err":
			stream = "stderr"
		}
		if stream != "" {
			if t, err := time.Parse(timeLayout, string(b[:len(timeLayout)])); err == nil {
				return Line{Time: t, Stream: stream, Text: string(b[prefixLen:])}
			}
		}
	}
	return Line{Stream: "stdout", Text: string(b)}
}

// backupLayout is how a rotated copy is named: NAME-<UTC time>.log, the
// names lumberjack gave them (so files of earlier corral versions are
// found), with .gz when compressed.
const backupLayout = "2006-01-02T15-04-05.000"

// Files returns the log file of service name in dir and its rotated copies
// that exist, newest first: NAME.log, then NAME-<time>.log or .log.gz.
// Only regular files count (a symlink planted there is not read).
func Files(dir, name string) []string {
	if name == "" || strings.ContainsAny(name, `/\`+"\x00") || name[0] == '.' {
		return nil
	}
	var out []string
	if st, err := os.Lstat(filepath.Join(dir, name+".log")); err == nil && st.Mode().IsRegular() {
		out = append(out, name+".log")
	}
	return append(out, backups(dir, name)...)
}

// backups lists the rotated copies of NAME.log in dir, newest first.
func backups(dir, name string) []string {
	entries, _ := os.ReadDir(dir)
	rotated := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}\.log(\.gz)?$`)
	var old []string
	for _, e := range entries {
		if e.Type().IsRegular() && rotated.MatchString(e.Name()) {
			old = append(old, e.Name())
		}
	}
	// The time in the name sorts them; a copy being compressed may exist
	// twice (plain and .gz) for a moment: the plain one is read.
	slices.SortFunc(old, func(a, b string) int { return strings.Compare(b, a) })
	return slices.CompactFunc(old, func(a, b string) bool {
		return strings.TrimSuffix(a, ".gz") == strings.TrimSuffix(b, ".gz")
	})
}

// ReadTail returns the last n lines (n <= 0: all) kept on disk for the log
// file NAME.log in dir, oldest first: from its end back through its
// rotated copies, never through a symlink. maxBytes (0: no bound) bounds
// the text read back: only whole lines whose text, with lineOverhead bytes
// each, fits in it are returned. A line longer than MaxLineBytes (a file
// corral did not write) is cut there.
func ReadTail(dir, name string, n int, maxBytes int64) ([]Line, error) {
	var out [][]Line // per file, newest file first
	count, size := 0, int64(0)
	full := func() bool { return n > 0 && count >= n || maxBytes > 0 && size >= maxBytes }
	for _, file := range Files(dir, name) {
		if full() {
			break
		}
		f, err := statedir.OpenFile(dir, file, os.O_RDONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue // rotated or compressed meanwhile
		}
		if err != nil {
			return nil, err
		}
		var lines []Line
		if strings.HasSuffix(file, ".gz") {
			lines, err = tailGzip(f, n-count, maxBytes-size, maxBytes > 0)
		} else {
			lines, err = tailPlain(f, n-count, maxBytes-size, maxBytes > 0)
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("logs: read %s: %w", filepath.Join(dir, file), err)
		}
		out = append(out, lines)
		count += len(lines)
		for _, l := range lines {
			size += lineCost(l.Text)
		}
	}
	var all []Line
	for i := len(out) - 1; i >= 0; i-- {
		all = append(all, out[i]...)
	}
	// The last file read may have given more than the bounds left.
	for len(all) > 0 && (n > 0 && len(all) > n || maxBytes > 0 && size > maxBytes) {
		size -= lineCost(all[0].Text)
		all[0] = Line{}
		all = all[1:]
	}
	return all, nil
}

// tailPlain reads lines back from the end of f: at most n (n <= 0: no
// bound) and, when bounded, about maxBytes of text.
func tailPlain(f *os.File, n int, maxBytes int64, bounded bool) ([]Line, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	end := st.Size()
	const block = 64 << 10
	var chunk []byte // the file from pos to end
	pos := end
	for pos > 0 {
		if n > 0 && bytes.Count(chunk, []byte{'\n'}) > n || bounded && int64(len(chunk)) > maxBytes+int64(MaxLineBytes+prefixLen) {
			break
		}
		step := min(int64(block), pos)
		pos -= step
		buf := make([]byte, step, step+int64(len(chunk)))
		if _, err := f.ReadAt(buf, pos); err != nil && err != io.EOF {
			return nil, err
		}
		chunk = append(buf, chunk...)
	}
	if pos > 0 {
		// The first line may have begun before what was read.
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			chunk = chunk[i+1:]
		} else {
			chunk = nil
		}
	}
	return splitLines(chunk, n), nil
}

// tailGzip streams a compressed copy, keeping its last n lines (n <= 0:
// all) and, when bounded, about maxBytes of them.
func tailGzip(f *os.File, n int, maxBytes int64, bounded bool) ([]Line, error) {
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(zr, 64<<10)
	var lines []Line
	var size int64
	for {
		b, err := readLine(br)
		if len(b) > 0 || err == nil {
			l := ParseLine(b)
			lines = append(lines, l)
			size += lineCost(l.Text)
			for len(lines) > 0 && (n > 0 && len(lines) > n || bounded && size > maxBytes) {
				size -= lineCost(lines[0].Text)
				lines[0] = Line{}
				lines = lines[1:]
			}
		}
		if err == io.EOF {
			return lines, nil
		}
		if err != nil {
			return lines, err
		}
	}
}

// readLine reads one line without its newline, cut at the longest line a
// sink writes (the rest of a longer one is skipped).
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		b, err := br.ReadSlice('\n')
		if room := MaxLineBytes + prefixLen - len(line); room > 0 {
			line = append(line, b[:min(len(b), room)]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		return line, err
	}
}

// splitLines parses the whole lines of b; the last n of them when n > 0.
func splitLines(b []byte, n int) []Line {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	if len(b) == 0 {
		return nil
	}
	raw := bytes.Split(b, []byte{'\n'})
	if n > 0 && len(raw) > n {
		raw = raw[len(raw)-n:]
	}
	out := make([]Line, len(raw))
	for i, r := range raw {
		if len(r) > MaxLineBytes+prefixLen {
			r = r[:MaxLineBytes+prefixLen]
		}
		out[i] = ParseLine(r)
	}
	return out
}
