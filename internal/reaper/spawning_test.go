package reaper

import (
	"testing"
	"time"
)

func TestWaitSpawnsWaitsForTheWindowToClose(t *testing.T) {
	if !WaitSpawns(time.Second) {
		t.Fatal("no start is going on, yet WaitSpawns timed out")
	}
	done := Spawning()
	if WaitSpawns(20 * time.Millisecond) {
		t.Fatal("WaitSpawns returned true while a start was in its window")
	}
	returned := make(chan bool)
	go func() { returned <- WaitSpawns(10 * time.Second) }()
	select {
	case <-returned:
		t.Fatal("WaitSpawns returned before the window closed")
	case <-time.After(20 * time.Millisecond):
	}
	done()
	done() // idempotent: a second call must not close another start's window
	if ok := <-returned; !ok {
		t.Fatal("WaitSpawns timed out after the window closed")
	}
	other := Spawning()
	defer other()
	if WaitSpawns(10 * time.Millisecond) {
		t.Fatal("the first start's second done() closed the second start's window")
	}
}
