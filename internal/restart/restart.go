package restart

import (
	"fmt"
	"time"
)

// Mode says which exits lead to a restart.
type Mode string

const (
	// Always restarts after any exit that was not requested.
	Always Mode = "always"
	// OnFailure restarts after a non-zero exit status or death by signal.
	OnFailure Mode = "on-failure"
	// Never leaves the service stopped.
	Never Mode = "never"
)

// ParseMode parses a policy name; "" means on-failure.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "":
		return OnFailure, nil
	case Always, OnFailure, Never:
		return Mode(s), nil
	}
	return "", fmt.Errorf("restart: unknown policy %q (want always, on-failure or never)", s)
}

// Policy is a service's restart configuration.
type Policy struct {
	Mode Mode
	// Backoff is the delay before an automatic restart. Only consecutive
	// quick failures (instances that did not start successfully, see
	// Decide) double it; MaxBackoff caps the doubled delay.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Jitter shortens each delay by up to Jitter of itself (0.2: by up to
	// 20%), never lengthens it: the delay is a ceiling a user can count on,
	// so that services failing together do not restart in lockstep.
	Jitter float64
	// Burst starts within Window move the service to failed instead of
	// starting it again.
	Burst  int
	Window time.Duration
	// StableAfter is the uptime after which an instance counts as started
	// successfully even without a readiness probe: its end resets the
	// backoff to Backoff. 0 disables the rule (then only Exit.Established
	// resets it).
	StableAfter time.Duration
}

// Defaults returns the policy used for unset fields. The first restart after
// a crash is near immediate (systemd's RestartSec defaults to 100ms too).
func Defaults() Policy {
	return Policy{
		Mode:        OnFailure,
		Backoff:     100 * time.Millisecond,
		MaxBackoff:  30 * time.Second,
		Jitter:      0.2,
		Burst:       5,
		Window:      10 * time.Minute,
		StableAfter: 10 * time.Second,
	}
}

// Validate reports a policy that cannot work.
func (p Policy) Validate() error {
	switch {
	case p.Mode != Always && p.Mode != OnFailure && p.Mode != Never:
		return fmt.Errorf("restart: unknown policy %q", p.Mode)
	case p.Backoff < 0 || p.MaxBackoff < 0 || p.Window < 0 || p.StableAfter < 0:
		return fmt.Errorf("restart: durations must not be negative")
	case p.MaxBackoff < p.Backoff:
		return fmt.Errorf("restart: max_backoff (%v) is shorter than backoff (%v)", p.MaxBackoff, p.Backoff)
	case !(p.Jitter >= 0 && p.Jitter < 1): // NaN too
		return fmt.Errorf("restart: jitter %v is outside [0, 1)", p.Jitter)
	case p.Burst < 0:
		return fmt.Errorf("restart: burst must not be negative")
	case p.Burst > 0 && p.Window <= 0:
		// No start lies within an empty window: the limit would be off.
		return fmt.Errorf("restart: a start limit (burst %d) needs a window; burst = 0 turns the limit off", p.Burst)
	}
	return nil
}

// Exit describes how an instance ended.
type Exit struct {
	At        time.Time
	Uptime    time.Duration
	Code      int  // exit status; meaningful when !Signaled
	Signaled  bool // killed by a signal it did not handle
	Requested bool // stopped on purpose (stop, restart, shutdown, reload)
	// Unhealthy: the supervisor ended it because a probe failed.
	Unhealthy bool
	// Established: the instance passed its readiness probe. The caller sets
	// it only for services that have one.
	Established bool
	// Cause, when set, is the human description of why the instance ended
	// ("not ready: http://127.0.0.1:7860/: connection refused", "runaway:
	// 80 processes > limit 64"); the decision's Reason then quotes it
	// instead of a generic text.
	Cause string
}

func (e Exit) failed() bool { return e.Signaled || e.Code != 0 || e.Unhealthy }

// startedOK reports whether the instance started successfully: it passed its
// readiness probe or stayed up at least StableAfter.
func (p Policy) startedOK(e Exit) bool {
	return e.Established || (p.StableAfter > 0 && e.Uptime >= p.StableAfter)
}

// History is the restart state of one service. It is a value owned by the
// service's goroutine; the functions here return updated copies.
type History struct {
	// Starts holds the automatic start times inside the current window.
	Starts []time.Time
	// Consecutive counts the failures since the last instance that started
	// successfully, this one included; it is the exponent of the backoff.
	Consecutive int
	// FailedAt is set when the start limit was hit; zero otherwise.
	FailedAt time.Time
	Reason   string
}

// Started records a start at now. A manual start (start, restart, ensure
// from a user) bypasses the start limit: it forgets the earlier starts, as a
// person asking for the service is the strongest signal that it should run,
// and counts only itself.
func (p Policy) Started(h History, now time.Time, manual bool) History {
	h.FailedAt, h.Reason = time.Time{}, ""
	if manual {
		h.Starts = []time.Time{now}
		return h
	}
	h.Starts = append(p.inWindow(h.Starts, now), now)
	return h
}

func (p Policy) inWindow(ts []time.Time, now time.Time) []time.Time {
	out := ts[:0:0]
	for _, t := range ts {
		if now.Sub(t) < p.Window {
			out = append(out, t)
		}
	}
	return out
}

// Action is what to do after an exit.
type Action int

const (
	// Stay stopped: the policy does not restart this exit.
	Stay Action = iota
	// Restart after Decision.Delay.
	Restart
	// Fail: the start limit is reached; the service is failed until
	// Decision.RearmAt or a manual start.
	Fail
)

func (a Action) String() string {
	return [...]string{"stay", "restart", "fail"}[a]
}

// Decision is the outcome of Decide.
type Decision struct {
	Action  Action
	Delay   time.Duration
	RearmAt time.Time
	Reason  string
}

// Decide says what to do after exit. jitter returns a number in [0, 1); it
// is called only when a restart is decided.
//
// The rules:
//
//   - A requested exit stays stopped; Never stays stopped; OnFailure stays
//     stopped after a clean exit (status 0, no signal, no failed probe).
//   - An instance started successfully if it passed its readiness probe
//     (exit.Established) or ran at least StableAfter (when StableAfter > 0).
//     Its end resets h.Consecutive to 0 before this exit is counted, so a
//     crash after a successful start waits Backoff, however many came
//     before.
//   - A failure increments h.Consecutive. Consecutive failures of instances
//     that did not start successfully (quick failures) double the delay:
//     with n = h.Consecutive after counting, the delay is Backoff·2^(n-1),
//     capped at MaxBackoff. A clean exit that restarts (policy always)
//     waits Backoff and is not counted.
//   - Jitter shortens the delay by up to Jitter of itself (never below 0,
//     never above the computed delay).
//   - The start limit: when Burst automatic starts lie within Window before
//     exit.At, the action is Fail with RearmAt, whatever the backoff.
//   - Reason is exit.Cause when set, else a description of the exit status.
func (p Policy) Decide(h History, exit Exit, jitter func() float64) (History, Decision) {
	if exit.Requested {
		return h, Decision{Action: Stay, Reason: "stopped on request"}
	}
	if p.startedOK(exit) {
		h.Consecutive = 0
	}
	if exit.failed() {
		h.Consecutive++
	}
	switch {
	case p.Mode == Never:
		return h, Decision{Action: Stay, Reason: "restart policy is never"}
	case p.Mode == OnFailure && !exit.failed():
		return h, Decision{Action: Stay, Reason: "exited successfully (policy on-failure)"}
	}
	h.Starts = p.inWindow(h.Starts, exit.At)
	if p.Burst > 0 && len(h.Starts) >= p.Burst {
		h.FailedAt = exit.At
		h.Reason = fmt.Sprintf("started %d times within %v (burst %d); last exit: %s", len(h.Starts), p.Window, p.Burst, describe(exit))
		return h, Decision{Action: Fail, RearmAt: p.RearmAt(h), Reason: h.Reason}
	}
	n := 0 // a clean exit waits Backoff
	if exit.failed() {
		n = h.Consecutive
	}
	return h, Decision{Action: Restart, Delay: p.delay(n, jitter), Reason: describe(exit)}
}

// RearmAt is when a failed service leaves the failed state by itself: once
// its oldest counted start has left the window, a new start is within limits.
func (p Policy) RearmAt(h History) time.Time {
	if h.FailedAt.IsZero() {
		return time.Time{}
	}
	if len(h.Starts) == 0 {
		return h.FailedAt
	}
	oldest := h.Starts[0]
	for _, t := range h.Starts {
		if t.Before(oldest) {
			oldest = t
		}
	}
	return oldest.Add(p.Window)
}

// delay is Backoff·2^(n-1) capped at MaxBackoff, shortened by up to Jitter
// of itself and never negative. A restart after a clean exit (n == 0) waits Backoff too.
func (p Policy) delay(n int, jitter func() float64) time.Duration {
	d := p.Backoff
	for i := 1; i < n && d > 0 && d < p.MaxBackoff; i++ {
		if d > p.MaxBackoff/2 {
			d = p.MaxBackoff // doubling would pass the cap (or overflow)
			break
		}
		d *= 2
	}
	if d > p.MaxBackoff {
		d = p.MaxBackoff
	}
	if p.Jitter > 0 && jitter != nil && d > 0 {
		d -= time.Duration(float64(d) * min(p.Jitter, 1) * jitter())
	}
	return max(d, 0)
}

func describe(e Exit) string {
	switch {
	case e.Cause != "":
		return e.Cause
	case e.Unhealthy:
		return "ended: liveness probe failed"
	case e.Signaled:
		return "killed by a signal"
	default:
		return fmt.Sprintf("exited with status %d", e.Code)
	}
}
