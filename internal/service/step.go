package service

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/restart"
)

// step is the lifecycle: it applies one event to the machine through the
// table and returns the effects for the owner goroutine to execute. It does
// no I/O and reads no clock (the event carries its time), so every state ×
// event pair can be driven by tests without a process.
func (m *machine) step(e event) []effect {
	m.fx = nil
	if m.stale(e) {
		return m.fx // empty, or the answer to a stale request
	}
	actions[stateIndex[m.state]][e.kind](m, e)
	m.settle(e.at)
	return m.fx
}

var stateIndex = func() map[State]int {
	ix := make(map[State]int, len(States))
	for i, s := range States {
		ix[s] = i
	}
	return ix
}()

// stale reports a result about work the machine has moved past: a check or
// timer of an earlier state, a probe or watcher of an instance that is
// gone or whose probes were stopped. A stale request is still answered.
func (m *machine) stale(e event) bool {
	switch e.kind {
	case EvChecked, EvFoundExt, EvRefused, EvSpawned, EvTimer:
		return e.gen != m.gen
	case EvReady, EvNotReady, EvHealthOK, EvHealthBad:
		return m.inst == nil || e.inst != m.inst.id || e.watchGen != m.inst.watchGen
	case EvExited, EvEmpty, EvStopFail, EvMain:
		return m.inst == nil || e.inst != m.inst.id
	case EvLimitFreeze, EvLimitStop, EvLimitRestart, EvLimitWarn:
		if e.inst != "" && (m.inst == nil || e.inst != m.inst.id) {
			m.fx = append(m.fx, fxReply{ch: e.reply}) // about an instance that is gone
			return true
		}
	}
	return false
}

func (m *machine) emit(kind journal.Kind, msg string, fields map[string]string) {
	m.fx = append(m.fx, fxJournal{kind: kind, msg: msg, fields: fields, inst: m.inst})
}

// to moves the machine to s. Entering a state starts a new generation, so
// whatever the previous one issued (a check, a timer) is stale from now on.
func (m *machine) to(s State, at time.Time, ev EventKind, reason string) {
	if s != m.state {
		m.emit(journal.State, fmt.Sprintf("%s → %s (%s)", m.state, s, ev), map[string]string{"from": string(m.state), "to": string(s)})
		m.state, m.since = s, at
		m.gen++
	}
	m.reason, m.cause = reason, nil
	if s != Stopping {
		m.stopCause = nil
	}
}

func (m *machine) fail(s State, at time.Time, ev EventKind, cause *Error) {
	m.to(s, at, ev, cause.Msg)
	m.cause = cause
}

func (m *machine) reply(ch chan reply, err error) {
	if ch != nil {
		m.fx = append(m.fx, fxReply{ch: ch, err: err})
	}
}

func (m *machine) err(code Code, format string, args ...any) *Error {
	return newErr(m.name, code, format, args...)
}

func (m *machine) addWaiter(e event) {
	if e.reply == nil {
		return
	}
	if e.wait == waitNone {
		m.reply(e.reply, nil)
		return
	}
	m.waiters = append(m.waiters, waiter{want: e.wait, ensure: e.ensure, ch: e.reply})
}

// settle answers every waiter whose wish the current state decides.
func (m *machine) settle(at time.Time) {
	keep := m.waiters[:0]
	for _, w := range m.waiters {
		if done, err := m.verdict(w); done {
			m.reply(w.ch, err)
		} else {
			keep = append(keep, w)
		}
	}
	m.waiters = keep
}

func (m *machine) verdict(w waiter) (bool, error) {
	switch m.state {
	case Stopped:
		if w.want == waitStopped {
			return true, nil
		}
		if m.cause != nil {
			return true, m.cause
		}
		return true, m.err(CodeStopped, "was stopped (%s) before it was %s", m.reason, map[waitFor]string{waitRunning: "running", waitReady: "ready"}[w.want])
	case Done:
		return true, nil // it ran and completed: a start or ensure is satisfied
	case Failed, StopFailed:
		if w.want == waitStopped && m.state == Failed {
			return true, nil
		}
		return true, m.cause
	case External:
		return true, nil
	case Ready, Unhealthy:
		return w.want != waitStopped, nil
	case Starting, Handover:
		return w.want == waitRunning, nil
	case Frozen:
		switch w.want {
		case waitRunning:
			return true, nil
		case waitReady:
			return true, m.err(CodeFrozen, "is frozen by the watchdog (%s); stop or restart it", m.reason)
		}
	}
	return false, nil // checking, stopping, restarting, ending, backoff: not decided yet
}

// argvFor validates a launch (its profile, its arguments for this
// configuration) and returns the command it runs.
func (m *machine) argvFor(l launch) ([]string, *Error) {
	argv, err := m.cfg.CommandWith(l.profile, l.args)
	if err != nil {
		return nil, m.err(CodeBadRequest, "%s", strings.TrimPrefix(err.Error(), "config: "))
	}
	return argv, nil
}

// currentLaunch is the launch of what runs or is about to.
func (m *machine) currentLaunch() launch {
	if m.inst != nil && m.state != Restarting {
		return m.inst.launch
	}
	return m.next.launch
}

// over is the launch a request makes of base, what it would otherwise
// keep: what the request names replaces base's, what it leaves out is kept.
func (e event) over(base launch) launch {
	l := base
	if e.profile != "" {
		l.profile = e.profile
	}
	if e.setArgs {
		l.args = e.args
	}
	if e.setVars {
		l.vars = e.vars
	}
	return l
}

// differs says how the launch a request names differs from cur, the
// instance's ("" when it does not: what it leaves out does not count).
// Environment values are never said, only the names that differ: they
// may be secrets.
func (e event) differs(cur launch) string {
	var d []string
	if e.profile != "" && e.profile != cur.profile {
		running := fmt.Sprintf("profile %q", cur.profile)
		if cur.profile == "" {
			running = "no profile"
		}
		d = append(d, fmt.Sprintf("%s, not %q", running, e.profile))
	}
	if e.setArgs && !slices.Equal(e.args, cur.args) {
		d = append(d, fmt.Sprintf("arguments %s, not %s", quoteArgs(cur.args), quoteArgs(e.args)))
	}
	if e.setVars && !slices.Equal(e.vars, cur.vars) {
		d = append(d, "another environment ("+envDiff(cur.vars, e.vars)+")")
	}
	return strings.Join(d, ", and ")
}

func quoteArgs(args []string) string {
	if len(args) == 0 {
		return "[] (none)"
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// envDiff names the variables whose values differ between two sorted
// KEY=VALUE lists, never the values.
func envDiff(have, want []string) string {
	split := func(vars []string) map[string]string {
		m := make(map[string]string, len(vars))
		for _, kv := range vars {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		return m
	}
	h, w := split(have), split(want)
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(w)) {
		v, ok := h[k]
		switch {
		case !ok:
			parts = append(parts, k+" is not set")
		case v != w[k]:
			parts = append(parts, k+" has another value")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if _, ok := w[k]; !ok {
			parts = append(parts, k+" is set")
		}
	}
	return strings.Join(parts, ", ")
}

// envKeys returns the names of KEY=VALUE vars.
func envKeys(vars []string) []string {
	if len(vars) == 0 {
		return nil
	}
	out := make([]string, len(vars))
	for i, kv := range vars {
		out[i], _, _ = strings.Cut(kv, "=")
	}
	return out
}

// decide asks the restart policy about an instance that ended on its own.
func (m *machine) decide(at time.Time, rand float64, inst *instance) (restart.Decision, *ending) {
	end := inst.end
	ex := restart.Exit{
		At: at, Uptime: at.Sub(inst.started),
		Code: -1, Unhealthy: end.code != CodeExited,
		Established: inst.ready && !inst.cfg.Ready.IsZero(),
		Cause:       end.msg,
	}
	if end.exit != nil {
		ex.Code, ex.Signaled = end.exit.Code, end.exit.Signaled
	}
	var d restart.Decision
	m.hist, d = m.cfg.Restart.Decide(m.hist, ex, func() float64 { return rand })
	return d, end
}
