package daemon

import (
	"log/slog"

	"github.com/corral-sh/corral/internal/reaper"
	"os"
	"os/exec"
	"sync"
	"time"
)

// keeper supervises the keeper process: started at daemon start, restarted
// if it dies, told goodbye on a clean exit.
type keeper struct {
	newCmd func() *exec.Cmd
	log    *slog.Logger

	mu      sync.Mutex // guards pw, cmd and closing
	pw      *os.File
	cmd     *exec.Cmd
	closing bool
}

func startKeeper(newCmd func() *exec.Cmd, log *slog.Logger) (*keeper, error) {
	k := &keeper{newCmd: newCmd, log: log}
	return k, k.spawn()
}

func (k *keeper) spawn() error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := k.newCmd()
	cmd.ExtraFiles = []*os.File{pr}
	spawned := reaper.Spawning()
	defer spawned()
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	pr.Close() // only the keeper reads; only we write
	reaper.Protect(cmd.Process.Pid)
	spawned()
	k.mu.Lock()
	k.pw, k.cmd = pw, cmd
	k.mu.Unlock()
	go func() {
		err := cmd.Wait()
		reaper.Unprotect(cmd.Process.Pid)
		k.mu.Lock()
		closing := k.closing
		k.mu.Unlock()
		if closing {
			return
		}
		k.log.Warn("keeper died; starting another", "err", err)
		pw.Close()
		for i := 0; ; i++ {
			if err := k.spawn(); err == nil {
				return
			}
			time.Sleep(min(time.Duration(i+1)*100*time.Millisecond, 2*time.Second))
		}
	}()
	return nil
}

// close tells the keeper the daemon ends cleanly and waits for it to go.
func (k *keeper) close() {
	k.mu.Lock()
	k.closing = true
	pw, cmd := k.pw, k.cmd
	k.mu.Unlock()
	pw.Write([]byte(keeperBye))
	pw.Close()
	done := make(chan struct{})
	go func() { cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		cmd.Process.Kill()
	}
}
