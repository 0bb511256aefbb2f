package reaper

import (
	"sync"

	"github.com/corral-sh/corral/internal/procinfo"
)

// Claim reports whether the zombie child described by st belongs to a
// contained tree and may be reaped. It must never claim a process that
// exec.Cmd (or any other code) will wait for.
type Claim func(st procinfo.Stat) bool

var (
	mu     sync.Mutex // guards claims and seq
	claims = map[int]Claim{}
	seq    int
)

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
	return len(claims) > 0
}
