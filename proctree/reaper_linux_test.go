package proctree_test

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// runExits runs n short commands concurrently and returns how many Waits
// failed to get their exit status 7.
func runExits(t *testing.T, n int) int {
	var wg sync.WaitGroup
	var lost atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := testproc.Command("exit", "7")
			err := cmd.Run()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 7 {
				lost.Add(1)
				_ = err
			}
		}()
	}
	wg.Wait()
	return int(lost.Load())
}

// While trees orphan processes to us and the reaper collects them, every
// exec.Cmd.Wait of ours still gets its child's own status.
func TestReaperNeverStealsWaitStatus(t *testing.T) {
	tiers(t, func(t *testing.T, c proctree.Containment) {
		tr, _ := startWebUI(t, c)
		// Orphan the whole tree (workers, respawner) onto us, then stop it
		// while our own children come and go.
		syscall.Kill(tr.PID(), syscall.SIGKILL)
		done := make(chan int)
		go func() { done <- runExits(t, 30) }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := tr.Stop(ctx, syscall.SIGKILL, 0); err != nil {
			t.Fatal(err)
		}
		if lost := <-done; lost != 0 {
			t.Fatalf("%d of 30 exec.Cmd.Wait calls lost their exit status", lost)
		}
		assertEmpty(t, tr, tr.PID())
	})
}

// Negative control: a blanket wait4(-1) reaper, the obvious way to collect
// orphans, steals exit statuses from exec.Cmd.Wait.
func TestNegativeControlBlanketReaperSteals(t *testing.T) {
	var stop atomic.Bool
	reaped := make(chan int)
	go func() {
		n := 0
		for !stop.Load() {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); err == nil && pid > 0 {
				n++
			}
		}
		reaped <- n
	}()
	lost := runExits(t, 30)
	stop.Store(true)
	n := <-reaped
	if lost == 0 {
		t.Fatalf("a blanket wait4(-1) loop (reaped %d) stole no status: the control shows nothing", n)
	}
	t.Logf("a blanket wait4(-1) reaper stole %d of 30 exit statuses", lost)
}
