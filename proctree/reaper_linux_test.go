package proctree_test

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/procinfo"
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
	// Deterministic rather than a race between a polling loop and Wait
	// (which the loop lost every time once, under CI's load): each child
	// has exited, a blanket reaper's wait4(-1) runs, then exec.Cmd.Wait.
	lost, stolen := 0, 0
	for i := 0; i < 5; i++ {
		cmd := testproc.Command("exit", "7")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the child to exit", func() bool {
			st, err := procinfo.ReadStat(cmd.Process.Pid)
			return err == nil && st.Zombie()
		})
		// The blanket reaper collects whatever is dead, ours included.
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err != nil || pid <= 0 {
				break
			}
			if pid == cmd.Process.Pid {
				stolen++
			}
		}
		cmd.Wait()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 7 {
			lost++
		}
	}
	if lost == 0 || stolen == 0 {
		t.Fatalf("a blanket wait4(-1) reaper (reaped %d) stole no status: the control shows nothing", stolen)
	}
	t.Logf("a blanket wait4(-1) reaper stole %d of 5 exit statuses", lost)
}
