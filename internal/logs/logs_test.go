package logs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	for i := 0; i < 3*MaxLines; i++ {
		fmt.Fprintf(w, "line %d\n", i)
	}
	tail := s.Tail(0)
	if len(tail) != MaxLines || tail[len(tail)-1].Text != fmt.Sprintf("line %d", 3*MaxLines-1) {
		t.Fatalf("kept %d lines, last %q", len(tail), tail[len(tail)-1].Text)
	}
	big := strings.Repeat("x", MaxLineBytes-1)
	for i := 0; i < 10; i++ {
		fmt.Fprintln(w, big)
	}
	if s.ringBytes > MaxRingBytes {
		t.Fatalf("ring holds %d bytes, limit %d", s.ringBytes, MaxRingBytes)
	}
	fmt.Fprint(w, strings.Repeat("y", 3*MaxLineBytes))
	if last := s.Tail(1)[0].Text; len(last) != MaxLineBytes {
		t.Fatalf("an endless line was not cut at %d bytes: %d", MaxLineBytes, len(last))
	}
}

func TestFileAndSubscribers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svc.log")
	s := NewSink(Options{File: path})
	w := s.Writer("stdout")
	fmt.Fprintln(w, "before")
	past, ch, cancel := s.Subscribe(-1)
	defer cancel()
	fmt.Fprintln(w, "after")
	if len(past) != 1 || past[0].Text != "before" {
		t.Fatalf("past %v", past)
	}
	if l := <-ch; l.Text != "after" || l.Seq != 2 {
		t.Fatalf("followed %+v", l)
	}
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "before\nafter\n" {
		t.Fatalf("file %q %v", b, err)
	}
}

// A reader resumes after the last line it saw; a number from another
// numbering (an earlier daemon's) starts over at the oldest kept.
func TestSubscribeAfter(t *testing.T) {
	const last = MaxLines + 3 // the ring keeps 4..last
	for _, tc := range []struct {
		after uint64
		n     int
		first uint64
		count int
	}{
		{last - 2, -1, last - 1, 2},
		{last - 2, 1, last, 1},
		{last, -1, 0, 0},
		{1, -1, 4, MaxLines}, // 2 and 3 were lost: the window says so
		{last + 50, -1, 4, MaxLines},
	} {
		s := NewSink(Options{})
		w := s.Writer("stdout")
		for i := 1; i <= last; i++ {
			fmt.Fprintf(w, "%d\n", i)
		}
		past, win, ch, cancel := s.SubscribeAfter(tc.after, tc.n)
		if len(past) != tc.count || (tc.count > 0 && past[0].Seq != tc.first) || win != (Window{First: 4, Last: last}) {
			t.Errorf("after %d n %d: %d lines from %v, window %+v", tc.after, tc.n, len(past), past[:min(1, len(past))], win)
		}
		fmt.Fprintln(w, "next")
		if l := <-ch; l.Text != "next" || l.Seq != last+1 {
			t.Errorf("the follow gave %+v", l)
		}
		cancel()
	}
}
