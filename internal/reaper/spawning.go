package reaper

import (
	"sync"
	"time"
)

// A child exists from its fork, but is Protected only once its starter
// returns from cmd.Start: in between, a scan of the daemon's children would
// take a shim or a leader being started for an orphan (a stray), and say a
// concurrent stop could not be verified. Starters announce the window;
// scans wait for it to close (they never block a start, so a start that
// starts another inside its window cannot deadlock against them).
var spawning struct {
	sync.Mutex // guards n
	n          int
	idle       *sync.Cond // signalled when n reaches 0
}

func init() { spawning.idle = sync.NewCond(&spawning.Mutex) }

// Spawning marks the start of a window in which a child may exist
// unprotected; the returned function ends it (call it once the child is
// Protected or the start failed).
func Spawning() (done func()) {
	spawning.Lock()
	spawning.n++
	spawning.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			spawning.Lock()
			if spawning.n--; spawning.n == 0 {
				spawning.idle.Broadcast()
			}
			spawning.Unlock()
		})
	}
}

// WaitSpawns waits until no start is in its window, at most for d; it
// reports whether the windows closed (false: a start is still going on,
// and what it forked may look unprotected).
func WaitSpawns(d time.Duration) bool {
	deadline := time.Now().Add(d)
	t := time.AfterFunc(d, func() {
		spawning.Lock()
		spawning.idle.Broadcast()
		spawning.Unlock()
	})
	defer t.Stop()
	spawning.Lock()
	defer spawning.Unlock()
	for spawning.n > 0 {
		if !time.Now().Before(deadline) {
			return false
		}
		spawning.idle.Wait()
	}
	return true
}
