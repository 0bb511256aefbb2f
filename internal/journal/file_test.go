package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileFoldTornAndCompact(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBus(10, nil)
	b.SetFile(f)
	if err := b.EmitSync(Event{Kind: Spawn, Service: "a", Instance: "i1", PID: 10, Start: 5, Boot: "x", Cgroup: "/g/i1", Cmdline: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	b.EmitSync(Event{Kind: Spawn, Service: "b", Instance: "i2", PID: 11})
	b.Emit(Event{Kind: State, Service: "a", Instance: "i1", Message: "ready"})
	b.Emit(Event{Kind: Stopped, Service: "b", Instance: "i2"})
	f.Close()
	// A crash in the middle of a write leaves a torn last line.
	raw, _ := os.ReadFile(path)
	os.WriteFile(path, append(raw, []byte(`{"seq":5,"kind":"spa`)...), 0o600)

	events, torn, err := ReadFile(path)
	if err != nil || torn != 1 || len(events) != 4 {
		t.Fatalf("read %d events, %d torn, %v", len(events), torn, err)
	}
	live := Live(events)
	if len(live) != 1 || live[0].ID != "i1" || live[0].Cgroup != "/g/i1" || live[0].PID != 10 || live[0].Start != 5 {
		t.Fatalf("live %+v", live)
	}
	if events[0].Seq != 1 || events[3].Seq != 4 {
		t.Fatalf("sequence numbers %d..%d", events[0].Seq, events[3].Seq)
	}
	if err := Compact(path, 1); err != nil {
		t.Fatal(err)
	}
	events, torn, _ = ReadFile(path)
	if torn != 0 || len(events) != 2 || events[0].Instance != "i1" || events[0].Kind != Spawn {
		t.Fatalf("after compaction: %+v (torn %d)", events, torn)
	}
	if l := Live(events); len(l) != 1 || l[0].ID != "i1" {
		t.Fatalf("compaction lost a live instance: %+v", l)
	}
}

// A journal that cannot be written refuses the synchronous append.
func TestEmitSyncReportsAFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	f, err := OpenFile("/dev/full")
	if err != nil {
		t.Fatal(err)
	}
	b := NewBus(10, nil)
	b.SetFile(f)
	err = b.EmitSync(Event{Kind: Spawn, Instance: "i"})
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("EmitSync to a full disk: %v", err)
	}
	if len(b.Recent(0)) != 0 {
		t.Fatal("an event that was not written was still recorded")
	}
}

// A long-running daemon's journal is compacted as it grows, keeping what
// the next start needs to reap.
func TestFileCompactsWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.CompactAt(4096, 10)
	b := NewBus(10, nil)
	b.SetFile(f)
	b.EmitSync(Event{Kind: Spawn, Service: "a", Instance: "live", PID: 1})
	for i := 0; i < 2000; i++ {
		b.Emit(Event{Kind: State, Service: "a", Instance: "live", Message: "a crash loop's chatter"})
	}
	if size := Size(path); size > 3*4096 {
		t.Fatalf("journal grew to %d bytes with compaction at 4096", size)
	}
	events, torn, _ := ReadFile(path)
	if torn != 0 || len(Live(events)) != 1 {
		t.Fatalf("after compaction: %d events, %d torn, live %v", len(events), torn, Live(events))
	}
}

// A reader resumes after the last event it saw: only later ones, found in
// the ring by number, with the window saying what was lost.
func TestSubscribeAfter(t *testing.T) {
	bus := func() *Bus {
		b := NewBus(5, nil)
		for range 8 { // 1..8; the ring keeps 4..8
			b.Emit(Event{Kind: State})
		}
		return b
	}
	for _, tc := range []struct {
		after uint64
		n     int
		want  string
	}{
		{6, -1, "[7 8]"},
		{6, 1, "[8]"},
		{8, -1, "[]"},
		{0, -1, "[4 5 6 7 8]"},
		{2, -1, "[4 5 6 7 8]"},  // 3 was lost: the window says so
		{99, -1, "[4 5 6 7 8]"}, // another numbering: as for 0
		{0, 2, "[7 8]"},
	} {
		b := bus()
		past, w, ch, cancel := b.SubscribeAfter(tc.after, tc.n)
		seqs := []uint64{}
		for _, e := range past {
			seqs = append(seqs, e.Seq)
		}
		if got := fmt.Sprint(seqs); got != tc.want || w != (Window{First: 4, Last: 8}) {
			t.Errorf("after %d n %d: %s %+v, want %s {4 8}", tc.after, tc.n, got, w, tc.want)
		}
		b.Emit(Event{Kind: State})
		if e := <-ch; e.Seq != 9 {
			t.Errorf("after %d: the follow gave %d, want 9", tc.after, e.Seq)
		}
		cancel()
	}
	_, w, _, cancel := NewBus(5, nil).SubscribeAfter(0, -1)
	cancel()
	if w != (Window{First: 1, Last: 0}) {
		t.Errorf("empty bus: window %+v, want {1 0}", w)
	}
}

func TestTapSeesEveryEventInOrder(t *testing.T) {
	b := NewBus(2, nil)
	var got []uint64
	b.Tap(func(e Event) { got = append(got, e.Seq) })
	_, ch, cancel := b.Subscribe(0)
	defer cancel()
	// More than a subscriber's buffer: a subscription drops the excess, a
	// tap must not.
	for i := 0; i < 1000; i++ {
		b.Emit(Event{Kind: Daemon})
	}
	if len(got) != 1000 || got[0] != 1 || got[999] != 1000 {
		t.Fatalf("tap saw %d events (first %v)", len(got), got[:min(3, len(got))])
	}
	if n := len(ch); n >= 1000 {
		t.Fatalf("the subscriber kept %d: the test does not show what a tap adds", n)
	}
}

// A subscriber that falls behind by more than its buffer is told so (its
// channel closes) instead of silently missing events; what it missed is
// still in the ring for a resume after the last one it got.
func TestSlowSubscriberIsClosedNotSkipped(t *testing.T) {
	b := NewBus(2000, nil)
	_, _, ch, cancel := b.SubscribeAfter(0, 0)
	defer cancel()
	for i := 0; i < 300; i++ {
		b.Emit(Event{Kind: Daemon})
	}
	var last uint64
	for e := range ch { // ends: the channel was closed
		if e.Seq != last+1 {
			t.Fatalf("gap in what the subscriber got: %d after %d", e.Seq, last)
		}
		last = e.Seq
	}
	past, _, _, cancel2 := b.SubscribeAfter(last, -1)
	defer cancel2()
	if len(past) != 300-int(last) || past[0].Seq != last+1 {
		t.Fatalf("resuming after %d gave %d events from %d", last, len(past), past[0].Seq)
	}
}
