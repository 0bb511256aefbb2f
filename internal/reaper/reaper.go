package reaper

import (
	"sync"
	"sync/atomic"

	"github.com/corral-sh/corral/internal/procinfo"
)

// Claim reports whether the zombie child described by st belongs to a
// contained tree and may be reaped. It must never claim a process that
// exec.Cmd (or any other code) will wait for.
type Claim func(st procinfo.Stat) bool

var (
	mu        sync.Mutex // guards claims, seq and protected
	claims    = map[int]Claim{}
	seq       int
	protected = map[int]bool{}
	initMode  atomic.Bool
)

// EnableInitMode makes Reap collect every zombie child that is not
// Protected: as PID 1 of a container, every orphan of the namespace comes to
// us, and an init that does not reap them fills the process table.
func EnableInitMode() {
	initMode.Store(true)
	startLoop()
	Reap()
}

// InitMode reports whether EnableInitMode was called.
func InitMode() bool { return initMode.Load() }

// Protect marks pid as a child whose status its own Wait will collect; in
// init mode it is never reaped here. Protect before the child can exit.
func Protect(pid int) {
	mu.Lock()
	protected[pid] = true
	mu.Unlock()
}

// Unprotect ends Protect once the child has been waited for.
func Unprotect(pid int) {
	mu.Lock()
	delete(protected, pid)
	mu.Unlock()
}

// Protected reports whether pid is a child some Wait will collect (a
// tree's leader, the keeper): never a stray.
func Protected(pid int) bool {
	mu.Lock()
	defer mu.Unlock()
	return protected[pid]
}

// Register adds a claim; the returned function removes it.
func Register(c Claim) (unregister func()) {
	mu.Lock()
	seq++
	key := seq
	claims[key] = c
	mu.Unlock()
	startLoop()
	return func() {
		mu.Lock()
		delete(claims, key)
		mu.Unlock()
	}
}

func claimed(st procinfo.Stat) bool {
	mu.Lock()
	if initMode.Load() && !protected[st.PID] {
		mu.Unlock()
		return true
	}
	cs := make([]Claim, 0, len(claims))
	for _, c := range claims {
		cs = append(cs, c)
	}
	mu.Unlock()
	for _, c := range cs {
		if c(st) {
			return true
		}
	}
	return false
}

func haveClaims() bool {
	mu.Lock()
	defer mu.Unlock()
	return len(claims) > 0 || initMode.Load()
}
