package logs

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func texts(ls []Line) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Text
	}
	return out
}

func TestProgressLinesKeepLastState(t *testing.T) {
	s := NewSink(Options{})
	w := s.Writer("stderr")
	fmt.Fprint(w, "loading\n")
	for i := 0; i <= 100; i += 10 {
		fmt.Fprintf(w, "\r%3d%%|%s|", i, strings.Repeat("#", i/10))
	}
	fmt.Fprint(w, "\n")
	fmt.Fprint(w, "done\r\n")
	fmt.Fprint(w, "a")
	fmt.Fprint(w, "b\nc\n")
	got := texts(s.Tail(0))
	want := []string{"loading", "100%|##########|", "done", "ab", "c"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines %q, want %q", got, want)
	}
}

func TestSplitWritesAcrossCarriageReturn(t *testing.T) {
	s := NewSink(Options{})
	w := s.Writer("stdout")
	for _, chunk := range []string{"10%", "\r", "20%", "\r", "", "30", "%\r\n", "x\n"} {
		w.Write([]byte(chunk))
	}
	if got := texts(s.Tail(0)); strings.Join(got, ",") != "30%,x" {
		t.Fatalf("got %q", got)
	}
}

func TestRingIsBounded(t *testing.T) {
	s := NewSink(Options{})
	w := s.Writer("stdout")
	for i := 0; i < 3*DefaultLines; i++ {
		fmt.Fprintf(w, "line %d\n", i)
	}
	tail := s.Tail(0)
	if len(tail) != DefaultLines || tail[len(tail)-1].Text != fmt.Sprintf("line %d", 3*DefaultLines-1) {
		t.Fatalf("kept %d lines, last %q", len(tail), tail[len(tail)-1].Text)
	}
	big := strings.Repeat("x", MaxLineBytes-1)
	for i := 0; i < 100; i++ {
		fmt.Fprintln(w, big)
	}
	if s.ringBytes > DefaultMemory {
		t.Fatalf("ring holds %d bytes, limit %d", s.ringBytes, DefaultMemory)
	}
	// A line of exactly the limit is one line; longer ones are cut into
	// lines of the limit, nothing dropped.
	fmt.Fprintln(w, strings.Repeat("z", MaxLineBytes))
	if last := s.Tail(1)[0].Text; len(last) != MaxLineBytes || last[0] != 'z' {
		t.Fatalf("a line of the limit became %d bytes", len(last))
	}
	fmt.Fprint(w, strings.Repeat("y", 3*MaxLineBytes))
	if got := s.Tail(2); len(got[0].Text) != MaxLineBytes || got[0].Text[0] != 'y' || len(got[1].Text) != MaxLineBytes || got[1].Text[0] != 'y' {
		t.Fatalf("an endless line was not cut at %d bytes: %d, %d", MaxLineBytes, len(got[0].Text), len(got[1].Text))
	}

	// Many short lines: the bookkeeping counts, not only the text.
	s = NewSink(Options{Keep: Keep{Lines: 1 << 20, Memory: 64 << 10}})
	w = s.Writer("stdout")
	for i := 0; i < 100000; i++ {
		fmt.Fprintln(w, "x")
	}
	if n := len(s.Tail(0)); int64(n)*(1+lineOverhead) > 64<<10 || n < 100 {
		t.Fatalf("kept %d one-byte lines in 64 KiB", n)
	}
	// A smaller bound applies at once.
	s.Configure(Keep{Lines: 10}, Rotation{})
	if got := s.Tail(0); len(got) != 10 {
		t.Fatalf("kept %d after the bound became 10", len(got))
	}
}

// A line of 100 MB without a newline (a program dumping a blob) goes
// through in bounded memory: each MaxLineBytes of it a line, the ring
// within its bound.
func TestHundredMegabyteLine(t *testing.T) {
	s := NewSink(Options{Keep: Keep{Lines: 100, Memory: 256 << 10}})
	w := s.Writer("stdout")
	chunk := []byte(strings.Repeat("b", 64<<10))
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	peak := before
	for i := 0; i < (100<<20)/len(chunk); i++ {
		w.Write(chunk)
		if i%256 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	w.Write([]byte("\n"))
	if s.ringBytes > 256<<10 {
		t.Fatalf("the ring holds %d bytes", s.ringBytes)
	}
	if tail := s.Tail(0); len(tail) == 0 || len(tail[len(tail)-1].Text) != MaxLineBytes {
		t.Fatalf("the last piece is not %d bytes", MaxLineBytes)
	}
	if grew := int64(peak) - int64(before); grew > 32<<20 {
		t.Fatalf("the heap grew by %d MiB for a 100 MB line", grew>>20)
	}
	t.Logf("heap in use grew by at most %.1f MiB while a 100 MB line passed", float64(int64(peak)-int64(before))/(1<<20))
}

func TestFormatParsesBack(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 4, 5, 123456789, time.FixedZone("x", 3600))
	for _, l := range []Line{
		{Time: at, Stream: "stdout", Text: "Running on local URL: http://127.0.0.1:7860"},
		{Time: at, Stream: "stderr", Text: "100%|####| 3/3 | done"},
		{Time: at, Stream: "stdout", Text: ""},
		{Time: at, Stream: "stderr", Text: "2026-12-02T10:04:05.123Z out | looks like a prefix"},
	} {
		f := FormatLine(l)
		back := ParseLine([]byte(f))
		if !back.Time.Equal(at.Truncate(time.Millisecond)) || back.Stream != l.Stream || back.Text != l.Text {
			t.Errorf("%q read back as %+v", f, back)
		}
	}
	if f := FormatLine(Line{Time: at, Stream: "stderr", Text: "x"}); f != "2026-12-02T09:04:05.123Z err | x" {
		t.Errorf("formatted %q", f)
	}
	// A file from before the prefix: the text whole, stdout, time unknown.
	for _, old := range []string{"plain old line", "2026-12-02T10:04:05.123Z xyz | not ours", ""} {
		if l := ParseLine([]byte(old)); l.Text != old || l.Stream != "stdout" || !l.Time.IsZero() {
			t.Errorf("old line %q read as %+v", old, l)
		}
	}
}

func TestFileAndSubscribers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svc.log")
	at := time.Date(2026, 12, 2, 10, 4, 5, 0, time.UTC)
	s := NewSink(Options{File: path, Now: func() time.Time { return at }})
	w := s.Writer("stdout")
	fmt.Fprintln(w, "before")
	past, ch, cancel := s.Subscribe(-1)
	defer cancel()
	fmt.Fprintln(s.Writer("stderr"), "after\nand more")
	if len(past) != 1 || past[0].Text != "before" {
		t.Fatalf("past %v", past)
	}
	if l := <-ch; l.Text != "after" || l.Seq != 2 || l.Stream != "stderr" {
		t.Fatalf("followed %+v", l)
	}
	s.Close()
	b, err := os.ReadFile(path)
	want := "2026-12-02T10:04:05.000Z out | before\n2026-12-02T10:04:05.000Z err | after\n2026-12-02T10:04:05.000Z err | and more\n"
	if err != nil || string(b) != want {
		t.Fatalf("file %q %v", b, err)
	}
}

// A reader resumes after the last line it saw; a number from another
// numbering (an earlier daemon's) starts over at the oldest kept.
func TestSubscribeAfter(t *testing.T) {
	const keep = 500
	const last = keep + 3 // the ring keeps 4..last
	for _, tc := range []struct {
		after uint64
		n     int
		first uint64
		count int
	}{
		{last - 2, -1, last - 1, 2},
		{last - 2, 1, last, 1},
		{last, -1, 0, 0},
		{1, -1, 4, keep}, // 2 and 3 were lost: the window says so
		{last + 50, -1, 4, keep},
	} {
		s := NewSink(Options{Keep: Keep{Lines: keep}})
		w := s.Writer("stdout")
		for i := 1; i <= last; i++ {
			fmt.Fprintf(w, "%d\n", i)
		}
		past, win, ch, cancel := s.SubscribeAfter(tc.after, tc.n)
		if len(past) != tc.count || (tc.count > 0 && past[0].Seq != tc.first) || win != (Window{First: 4, Last: last}) {
			t.Errorf("after %d n %d: %d lines from %v, window %+v", tc.after, tc.n, len(past), past[:min(1, len(past))], win)
		}
		for i, l := range past {
			if l.Seq != tc.first+uint64(i) || l.Text != fmt.Sprint(l.Seq) {
				t.Fatalf("line %d of the past is %+v", i, l)
			}
		}
		fmt.Fprintln(w, "next")
		if l := <-ch; l.Text != "next" || l.Seq != last+1 {
			t.Errorf("the follow gave %+v", l)
		}
		cancel()
	}
}

// The ring wraps around: what it gives is always in order.
func TestRingWraps(t *testing.T) {
	s := NewSink(Options{Keep: Keep{Lines: 100}})
	w := s.Writer("stdout")
	for i := 1; i <= 1000; i++ {
		fmt.Fprintf(w, "%d\n", i)
		if i%37 == 0 {
			tail := s.Tail(0)
			for j, l := range tail {
				if want := uint64(i - len(tail) + 1 + j); l.Seq != want || l.Text != fmt.Sprint(want) {
					t.Fatalf("after %d lines, line %d of the tail is %+v", i, j, l)
				}
			}
		}
	}
}

func write(t *testing.T, s *Sink, stream string, from, to int) {
	t.Helper()
	w := s.Writer(stream)
	for i := from; i <= to; i++ {
		fmt.Fprintf(w, "line %d\n", i)
	}
}

// A daemon restarted: the new sink starts with the old one's lines, and
// after a clean close numbers on in its epoch, so a follower resuming
// after the last number it saw gets exactly what it had not.
func TestPreloadAfterCleanClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.log")
	s := NewSink(Options{File: path, Keep: Keep{Lines: 50}})
	write(t, s, "stdout", 1, 80)
	write(t, s, "stderr", 81, 82)
	old := s.Tail(0)
	s.Close()

	s2 := NewSink(Options{File: path, Keep: Keep{Lines: 50}})
	if s2.Epoch() != s.Epoch() {
		t.Fatalf("a clean close did not carry the epoch over")
	}
	got := s2.Tail(0)
	if len(got) != len(old) {
		t.Fatalf("preloaded %d lines, the old ring had %d", len(got), len(old))
	}
	for i := range got {
		if got[i].Seq != old[i].Seq || got[i].Text != old[i].Text || got[i].Stream != old[i].Stream ||
			!got[i].Time.Equal(old[i].Time.Truncate(time.Millisecond)) {
			t.Fatalf("line %d preloaded as %+v, was %+v", i, got[i], old[i])
		}
	}
	past, _, _, cancel := s2.SubscribeAfter(80, -1)
	cancel()
	if len(past) != 2 || past[0].Text != "line 81" || past[0].Stream != "stderr" {
		t.Fatalf("a resume after 80 got %v", past)
	}
	write(t, s2, "stdout", 83, 83)
	if l := s2.Tail(1)[0]; l.Seq != 83 {
		t.Fatalf("numbering went on at %d, want 83", l.Seq)
	}
	if _, err := os.Stat(path + ".seq"); err == nil {
		t.Fatal("the record was not used up")
	}

	// Not closed (a crash): a new epoch, numbered from 1.
	s3 := NewSink(Options{File: path, Keep: Keep{Lines: 10}})
	if s3.Epoch() == s2.Epoch() {
		t.Fatal("a sink that was not closed handed its epoch on")
	}
	if got := s3.Tail(0); len(got) != 10 || got[0].Seq != 1 || got[9].Seq != 10 || got[9].Text != "line 83" {
		t.Fatalf("after a crash: %v", got)
	}

	// Closed, then the file changed: a new epoch.
	s3.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("appended by someone\n")
	f.Close()
	if s4 := NewSink(Options{File: path, Keep: Keep{Lines: 10}}); s4.Epoch() == s3.Epoch() || s4.Tail(1)[0].Text != "appended by someone" {
		t.Fatal("a file changed after the close kept the epoch")
	}
}

// A line written after Close (a tree's last words) is on disk, and the
// record follows it.
func TestLateLineAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.log")
	s := NewSink(Options{File: path})
	write(t, s, "stdout", 1, 3)
	s.Close()
	write(t, s, "stdout", 4, 4)
	s2 := NewSink(Options{File: path})
	if s2.Epoch() != s.Epoch() || s2.Tail(1)[0].Text != "line 4" || s2.Tail(1)[0].Seq != 4 {
		t.Fatalf("after a late line: epoch kept %v, last %+v", s2.Epoch() == s.Epoch(), s2.Tail(1)[0])
	}
}

// Preloading is bounded by what the ring keeps, and reads back through
// rotated copies, compressed or not, and files of before the prefix.
func TestPreloadAcrossRotations(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.log")
	os.WriteFile(filepath.Join(dir, "web-2026-01-01T10-00-00.000.log"), []byte("ancient 1\nancient 2\n"), 0o600)
	for _, compress := range []bool{false, true} {
		s := NewSink(Options{File: path, Rotation: Rotation{MaxSize: 4096, Keep: 3, Compress: compress}, Keep: Keep{Lines: 100000, Memory: 64 << 20}})
		write(t, s, "stdout", 1, 400)
		s.Close()
		s.file.Close()
		files := Files(dir, "web")
		if len(files) != 4 || files[0] != "web.log" {
			t.Fatalf("compress %v: files %v", compress, files)
		}
		for _, f := range files[1:] {
			if strings.HasSuffix(f, ".gz") != compress {
				t.Fatalf("compress %v: copy %s", compress, f)
			}
		}
		// Everything still on disk, in order, across the copies.
		all, err := ReadTail(dir, "web", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		lastN := all[len(all)-1].Text
		for i := 1; i < len(all); i++ {
			var a, b int
			if _, err := fmt.Sscanf(all[i-1].Text, "line %d", &a); err != nil {
				continue
			}
			fmt.Sscanf(all[i].Text, "line %d", &b)
			if b != a+1 {
				t.Fatalf("compress %v: %q then %q", compress, all[i-1].Text, all[i].Text)
			}
		}
		if lastN != "line 400" || len(all) < 100 {
			t.Fatalf("compress %v: %d lines on disk, last %q", compress, len(all), lastN)
		}
		// Bounded by lines, then by memory.
		if got, _ := ReadTail(dir, "web", 150, 0); len(got) != 150 || got[149].Text != "line 400" || got[0].Text != "line 251" {
			t.Fatalf("compress %v: a tail of 150 across copies: %d lines, %v … %v", compress, len(got), got[0], got[len(got)-1])
		}
		bound := 20 * lineCost("line 400")
		if got, _ := ReadTail(dir, "web", 0, bound); len(got) != 20 {
			t.Fatalf("compress %v: %d lines in %d bytes", compress, len(got), bound)
		}
		s2 := NewSink(Options{File: path, Keep: Keep{Lines: 120}})
		if got := s2.Tail(0); len(got) != 120 || got[119].Seq != s.Tail(1)[0].Seq || got[0].Text != "line 281" {
			t.Fatalf("compress %v: preloaded %d, last %+v", compress, len(got), got[len(got)-1])
		}
		s2.file.Close()
		for _, f := range Files(dir, "web") {
			os.Remove(filepath.Join(dir, f))
		}
		os.Remove(path + ".seq")
	}
	// A file of before: its lines, stdout, no time.
	os.WriteFile(path, []byte("old 1\nold 2\n"), 0o600)
	s := NewSink(Options{File: path})
	if got := s.Tail(0); len(got) != 2 || got[1].Text != "old 2" || got[1].Stream != "stdout" || !got[1].Time.IsZero() {
		t.Fatalf("an old file preloaded as %v", got)
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "svc.log")
	f, err := OpenFile(path, Rotation{MaxSize: 100, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	var rotated []string
	f.OnRotate(func(nf *os.File) { rotated = append(rotated, nf.Name()) })
	line := []byte(strings.Repeat("a", 39) + "\n")
	for i := 0; i < 20; i++ {
		f.Write(line)
	}
	if len(rotated) == 0 {
		t.Fatal("no rotation")
	}
	files := Files(dir, "svc")
	if len(files) != 3 {
		t.Fatalf("files %v: want the file and 2 copies", files)
	}
	for _, name := range files {
		st, _ := os.Stat(filepath.Join(dir, name))
		if st.Size() > 100 || st.Size()%40 != 0 {
			t.Fatalf("%s is %d bytes: a write was split or the size passed", name, st.Size())
		}
	}
	// keep = 0: the file starts over, no copies.
	f.SetRotation(Rotation{MaxSize: 100, Keep: 0})
	for i := 0; i < 5; i++ {
		f.Write(line)
	}
	if files := Files(dir, "svc"); len(files) != 1 {
		t.Fatalf("keep 0 left %v", files)
	}
	// Compressed copies are gzip of what was written.
	f.SetRotation(Rotation{MaxSize: 100, Keep: 1, Compress: true})
	for i := 0; i < 7; i++ {
		f.Write(line)
	}
	f.Close()
	files = Files(dir, "svc")
	if len(files) != 2 || !strings.HasSuffix(files[1], ".log.gz") {
		t.Fatalf("files %v", files)
	}
	gz, _ := os.Open(filepath.Join(dir, files[1]))
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	if len(b) == 0 || len(b)%40 != 0 {
		t.Fatalf("the compressed copy holds %d bytes", len(b))
	}
	// A symlink in place of the file is refused.
	link := filepath.Join(dir, "evil.log")
	os.Symlink(filepath.Join(dir, "elsewhere"), link)
	if _, err := OpenFile(link, Rotation{}); err == nil {
		t.Fatal("a symlinked log file was opened")
	}
}
