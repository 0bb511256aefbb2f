// Package service owns the lifecycle of one supervised service: its state,
// its current instance (a proctree Tree) and main process, readiness and
// liveness probes, the port preflight, stops, and restarts decided by the
// restart policy.
//
// The lifecycle is data: machine.step (step.go) applies one event through
// actions[state][event] (table.go) and returns effects. It does no I/O and
// reads no clock. The owner goroutine (loop.go) is the only caller of step
// and the executor of its effects; whatever blocks (preflight.go, the
// probes and watchers of watch.go, stop.go) runs outside it and posts an
// event back. Requests carry reply channels, so concurrent callers
// coalesce: any number of ensures while a service starts lead to exactly
// one instance. A snapshot published after every step answers Status and
// Tree without waiting for the owner goroutine.
//
// Files: state.go (states, events, the machine's data), table.go (the
// table and its actions), step.go (step, the stale filter, waiters),
// loop.go (the owner goroutine and the executor), spawn.go, preflight.go,
// watch.go, stop.go, errors.go (codes).
package service
