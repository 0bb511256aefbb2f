package service

import (
	"fmt"
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

// argvFor validates a request's profile and returns the command it runs.
func (m *machine) argvFor(profile string) ([]string, *Error) {
	argv, err := m.cfg.CommandFor(profile)
	if err != nil {
		return nil, m.err(CodeBadRequest, "%v", err)
	}
	return argv, nil
}

// currentProfile is the profile of what runs or is about to.
func (m *machine) currentProfile() string {
	if m.inst != nil && m.state != Restarting {
		return m.inst.profile
	}
	return m.next.profile
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
