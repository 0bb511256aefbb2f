package cgroupv2

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func testGroup(t *testing.T) *Group {
	t.Helper()
	info := Detect()
	if !info.Usable || os.Geteuid() != 0 {
		t.Skipf("cgroup v2 not usable here (usable=%v: %s; euid %d)", info.Usable, info.Reason, os.Geteuid())
	}
	parent := filepath.Join(info.Mount, info.Self, "corral")
	if err := Probe(parent); err != nil {
		t.Skipf("cannot create groups: %v", err)
	}
	g, err := Create(filepath.Join(parent, "cgroupv2-test-"+t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Thaw()
		g.Kill()
		g.WaitEmpty(context.Background())
		g.Remove()
	})
	return g
}

func TestDetect(t *testing.T) {
	info := Detect()
	t.Logf("%+v", info)
	if info.Layout == "" {
		t.Fatal("no layout")
	}
	if info.Usable && (info.Mount == "" || info.Self == "") {
		t.Fatalf("usable without mount or own path: %+v", info)
	}
}

// Regression: watches on one path share an inotify descriptor. With the
// add outside the lock, a concurrent cancel could remove the kernel watch a
// new registration had just been handed, and that waiter never heard of the
// change again.
func TestWatchSurvivesConcurrentCancels(t *testing.T) {
	g := testGroup(t)
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cancel, err := Watch(g.Dir, func() {})
				if err != nil {
					t.Error(err)
					return
				}
				cancel()
			}()
		}
		got := make(chan struct{}, 1)
		cancel, err := Watch(g.Dir, func() {
			select {
			case got <- struct{}{}:
			default:
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		val := "1"
		if round%2 == 1 {
			val = "0"
		}
		if err := g.write("cgroup.freeze", val); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: no event after the freeze state changed", round)
		}
		cancel()
	}
}
