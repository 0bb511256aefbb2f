package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/restart"
)

// action is what one event does in one state.
type action func(m *machine, e event)

// actions is the lifecycle: actions[state][event]. Every cell is filled;
// the table test fails on a nil one. A cell named impossible is an event
// that the stale filter or the states before it rule out; reaching it is a
// bug, which is logged and changes nothing.
var actions = [numStates][numEvents]action{
	// No instance; nothing wanted.
	{
		EvStart: startFresh, EvRestart: startFresh, EvStop: stopIdle, EvShutdown: shut(stopIdle),
		EvLimitFreeze: limitIgnore, EvLimitStop: limitIgnore, EvLimitRestart: limitIgnore, EvLimitWarn: limitIgnore,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: impossible, EvExited: impossible, EvEmpty: impossible, EvStopFail: impossible, EvTimer: impossible, EvHandover: impossible,
	},
	// Checking: the preflight runs outside the loop.
	{
		EvStart: coalesce, EvRestart: repend, EvStop: stopIdle, EvShutdown: shut(stopIdle),
		EvLimitFreeze: limitIgnore, EvLimitStop: limitIgnore, EvLimitRestart: limitIgnore, EvLimitWarn: limitIgnore,
		EvChecked: spawnChecked, EvFoundExt: becomeExternal, EvRefused: refused, EvSpawned: spawned,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: impossible, EvExited: impossible, EvEmpty: impossible, EvStopFail: impossible, EvTimer: impossible, EvHandover: impossible,
	},
	// Starting: readiness probe under way.
	{
		EvStart: coalesce, EvRestart: restartNow, EvStop: stopNow, EvShutdown: shut(stopNow),
		EvLimitFreeze: limitFreeze, EvLimitStop: limitStop, EvLimitRestart: limitRestart, EvLimitWarn: limitWarn,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: becomeReady, EvNotReady: notReady, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: mainFound, EvExited: exited, EvEmpty: impossible, EvStopFail: impossible, EvTimer: impossible, EvHandover: handover,
	},
	// Ready.
	{
		EvStart: coalesce, EvRestart: restartNow, EvStop: stopNow, EvShutdown: shut(stopNow),
		EvLimitFreeze: limitFreeze, EvLimitStop: limitStop, EvLimitRestart: limitRestart, EvLimitWarn: limitWarn,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: healthOK, EvHealthBad: healthBad,
		EvMain: mainFound, EvExited: exited, EvEmpty: impossible, EvStopFail: impossible, EvTimer: impossible, EvHandover: handover,
	},
	// Unhealthy.
	{
		EvStart: coalesce, EvRestart: restartNow, EvStop: stopNow, EvShutdown: shut(stopNow),
		EvLimitFreeze: limitFreeze, EvLimitStop: limitStop, EvLimitRestart: limitRestart, EvLimitWarn: limitWarn,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: healthyAgain, EvHealthBad: healthBad,
		EvMain: mainFound, EvExited: exited, EvEmpty: impossible, EvStopFail: impossible, EvTimer: impossible, EvHandover: handover,
	},
	// Frozen: probes paused; a stop kills.
	{
		EvStart: refuseFrozen, EvRestart: restartNow, EvStop: stopNow, EvShutdown: shut(stopNow),
		EvLimitFreeze: limitIgnore, EvLimitStop: limitStop, EvLimitRestart: limitRestart, EvLimitWarn: limitIgnore,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: mainFound, EvExited: exited, EvEmpty: impossible, EvStopFail: impossible, EvTimer: impossible, EvHandover: handOverFrozen,
	},
	// Stopping: a requested stop under way.
	{
		EvStart: queueStart, EvRestart: queueStart, EvStop: stopWait, EvShutdown: shut(stopWait),
		EvLimitFreeze: limitThaw, EvLimitStop: limitThaw, EvLimitRestart: limitThaw, EvLimitWarn: limitThaw,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: ignoreLate, EvExited: noteExit, EvEmpty: emptyStopped, EvStopFail: stopFailed, EvTimer: impossible, EvHandover: ignoreLate,
	},
	// Restarting: the old tree goes first, completely.
	{
		EvStart: coalesce, EvRestart: repend, EvStop: stopJoin, EvShutdown: shut(stopJoin),
		EvLimitFreeze: limitThaw, EvLimitStop: limitThaw, EvLimitRestart: limitThaw, EvLimitWarn: limitThaw,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: ignoreLate, EvExited: noteExit, EvEmpty: emptyRestart, EvStopFail: stopFailed, EvTimer: impossible, EvHandover: ignoreLate,
	},
	// Ending: the rest of an ended instance's tree is being stopped.
	{
		EvStart: queueStart, EvRestart: queueStart, EvStop: stopJoin, EvShutdown: shut(stopJoin),
		EvLimitFreeze: limitThaw, EvLimitStop: limitThaw, EvLimitRestart: limitThaw, EvLimitWarn: limitThaw,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: ignoreLate, EvExited: noteExit, EvEmpty: emptyDecide, EvStopFail: stopFailed, EvTimer: impossible, EvHandover: ignoreLate,
	},
	// Backoff: a timer will start it again.
	{
		EvStart: ensureJoins, EvRestart: startFresh, EvStop: stopIdle, EvShutdown: shut(stopIdle),
		EvLimitFreeze: limitIgnore, EvLimitStop: limitIgnore, EvLimitRestart: limitIgnore, EvLimitWarn: limitIgnore,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: impossible, EvExited: impossible, EvEmpty: impossible, EvStopFail: impossible, EvTimer: timerStart, EvHandover: impossible,
	},
	// Failed: a manual start, or the re-arm timer, starts it again.
	{
		EvStart: startFresh, EvRestart: startFresh, EvStop: stopIdle, EvShutdown: shut(stopIdle),
		EvLimitFreeze: limitIgnore, EvLimitStop: limitIgnore, EvLimitRestart: limitIgnore, EvLimitWarn: limitIgnore,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: impossible, EvExited: impossible, EvEmpty: impossible, EvStopFail: impossible, EvTimer: timerStart, EvHandover: impossible,
	},
	// Done: a one-shot that completed; ensure is satisfied, start runs it again.
	{
		EvStart: ensureOrRun, EvRestart: startFresh, EvStop: stopIdle, EvShutdown: shut(stopIdle),
		EvLimitFreeze: limitIgnore, EvLimitStop: limitIgnore, EvLimitRestart: limitIgnore, EvLimitWarn: limitIgnore,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: impossible, EvExited: impossible, EvEmpty: impossible, EvStopFail: impossible, EvTimer: impossible, EvHandover: impossible,
	},
	// StopFailed: the tree is kept; only another stop touches it.
	{
		EvStart: refuseStuck, EvRestart: restartNow, EvStop: stopNow, EvShutdown: shut(stopNow),
		EvLimitFreeze: limitIgnore, EvLimitStop: limitIgnore, EvLimitRestart: limitIgnore, EvLimitWarn: limitIgnore,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: ignoreLate, EvExited: noteExit, EvEmpty: impossible, EvStopFail: impossible, EvTimer: impossible, EvHandover: ignoreLate,
	},
	// External: someone else's server; never touched.
	{
		EvStart: recheck, EvRestart: refuseExternal, EvStop: stopIdle, EvShutdown: shut(stopIdle),
		EvLimitFreeze: limitIgnore, EvLimitStop: limitIgnore, EvLimitRestart: limitIgnore, EvLimitWarn: limitIgnore,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: impossible, EvNotReady: impossible, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: impossible, EvExited: impossible, EvEmpty: impossible, EvStopFail: impossible, EvTimer: impossible, EvHandover: impossible,
	},
	// Handover: the successor's readiness is awaited again.
	{
		EvStart: coalesce, EvRestart: restartNow, EvStop: stopNow, EvShutdown: shut(stopNow),
		EvLimitFreeze: limitFreeze, EvLimitStop: limitStop, EvLimitRestart: limitRestart, EvLimitWarn: limitWarn,
		EvChecked: impossible, EvFoundExt: impossible, EvRefused: impossible, EvSpawned: impossible,
		EvReady: becomeReady, EvNotReady: notReady, EvHealthOK: impossible, EvHealthBad: impossible,
		EvMain: mainFound, EvExited: exited, EvEmpty: impossible, EvStopFail: impossible, EvTimer: impossible, EvHandover: handover,
	},
}

type fxBug struct{ msg string }

func (fxBug) isEffect() {}

func impossible(m *machine, e event) {
	m.fx = append(m.fx, fxBug{msg: fmt.Sprintf("service: event %s cannot happen in state %s", e.kind, m.state)})
	m.reply(e.reply, nil)
}

// shut marks the service as shutting down, then acts as a stops.
func shut(a action) action {
	return func(m *machine, e event) {
		m.shutdown = true
		a(m, e)
	}
}

// startGuard refuses a start after shutdown or with an unknown profile.
func (m *machine) startGuard(e event) bool {
	if m.shutdown {
		m.reply(e.reply, m.err(CodeShuttingDown, "corral is shutting down; it starts nothing"))
		return false
	}
	if _, err := m.argvFor(e.launch); err != nil {
		m.reply(e.reply, err)
		return false
	}
	return true
}

// check enters Checking for next: the preflight runs outside the loop.
func (m *machine) check(e event, next pending, reason string) {
	m.fx = append(m.fx, fxCancelTimer{})
	m.nextStart = time.Time{}
	m.external = nil
	m.next = next
	m.to(Checking, e.at, e.kind, reason)
	m.fx = append(m.fx, fxPreflight{gen: m.gen, profile: next.profile})
}

// startFresh: nothing runs; check the ports, then spawn.
func startFresh(m *machine, e event) {
	if !m.startGuard(e) {
		return
	}
	var base launch
	if m.state == Backoff || m.state == Failed {
		base = m.next.launch // what the policy would have restarted with
	}
	m.check(e, pending{launch: e.over(base), manual: true}, "checking ports before the start")
	m.addWaiter(e)
}

func ensureOrRun(m *machine, e event) {
	if e.ensure && e.differs(m.next.launch) == "" {
		m.reply(e.reply, nil) // a one-shot that completed satisfies ensure
		return
	}
	startFresh(m, e)
}

// coalesce joins a start to the instance that runs or is about to: never a
// second one. Another profile, other arguments or another environment than
// that instance's are refused, or switch it when the request says so.
func coalesce(m *machine, e event) {
	if !m.startGuard(e) {
		return
	}
	if diff := e.differs(m.currentLaunch()); diff != "" {
		if e.switchProfile {
			if m.state == Checking || m.state == Restarting {
				repend(m, e)
			} else {
				restartNow(m, e)
			}
			return
		}
		verb := "runs"
		if m.state == Checking || m.state == Restarting {
			verb = "is starting"
		}
		m.reply(e.reply, m.err(CodeProfileMismatch, "%s with %s: restart it with what this request asks for, or ask to restart if different (restart_if_different=1)", verb, diff))
		return
	}
	if m.state == Checking || m.state == Restarting {
		m.next.manual = true
	}
	m.addWaiter(e)
}

// repend changes the start that is about to happen.
func repend(m *machine, e event) {
	if !m.startGuard(e) {
		return
	}
	m.next.launch = e.over(m.next.launch)
	m.next.manual = true
	m.addWaiter(e)
}

func (m *machine) stopTree(kill bool) {
	m.inst.watchGen++
	m.fx = append(m.fx, fxStopWatch{inst: m.inst}, fxStopTree{inst: m.inst, kill: kill})
}

// restartNow stops the running tree completely; the new start follows
// when it is empty.
func restartNow(m *machine, e event) {
	if !m.startGuard(e) {
		return
	}
	kill := m.state == Frozen || m.state == StopFailed
	m.restartAfter(e, "restart requested")
	m.stopTree(kill)
}

// restartAfter makes the start that follows the tree's stop: with what the
// request names, and the instance's profile, arguments and environment for
// what it leaves out.
func (m *machine) restartAfter(e event, reason string) {
	m.next = pending{launch: e.over(m.inst.launch), manual: true}
	m.to(Restarting, e.at, e.kind, reason)
	m.addWaiter(e)
}

// queueStart: a start while a tree is being stopped waits for it to be
// empty (then starts manually, whatever the policy would have said).
func queueStart(m *machine, e event) {
	if !m.startGuard(e) {
		return
	}
	m.restartAfter(e, "start queued behind the stop of the previous tree")
}

func stopNow(m *machine, e event) {
	kill := m.state == Frozen || m.state == StopFailed
	m.to(Stopping, e.at, e.kind, "stop requested")
	m.stopTree(kill)
	m.addWaiter(e)
}

// stopJoin: a stop is already under way; stay stopped after it.
func stopJoin(m *machine, e event) {
	m.to(Stopping, e.at, e.kind, "stop requested")
	m.addWaiter(e)
}

func stopWait(m *machine, e event) {
	m.stopCause = nil // asked for now: a requested stop
	m.addWaiter(e)
}

// stopIdle: nothing runs; forget what was wanted.
func stopIdle(m *machine, e event) {
	m.fx = append(m.fx, fxCancelTimer{})
	m.nextStart = time.Time{}
	m.external = nil
	m.to(Stopped, e.at, e.kind, "stopped on request")
	m.addWaiter(e)
}

func refuseFrozen(m *machine, e event) {
	m.reply(e.reply, m.err(CodeFrozen, "is frozen by the watchdog (%s); stop or restart it", m.reason))
}

func refuseStuck(m *machine, e event) {
	m.reply(e.reply, m.err(CodeStopIncomplete, "the previous instance's tree is not empty (%s); stop it again, or see corral status", m.reason))
}

func refuseExternal(m *machine, e event) {
	m.reply(e.reply, m.err(CodeExternal, "is served by a process corral did not start (pids %v); corral will not restart it", m.external))
}

// recheck: is the external server still there? The preflight says.
func recheck(m *machine, e event) {
	if !m.startGuard(e) {
		return
	}
	m.check(e, pending{launch: e.over(launch{}), manual: true}, "checking whether the external server still answers")
	m.addWaiter(e)
}

func limitIgnore(m *machine, e event) { m.reply(e.reply, nil) }

// limitThaw: the watchdog froze a tree that is being stopped (it looked
// before the stop began); a frozen tree could act on no stop signal or
// hook, so it is thawed and the stop goes on.
func limitThaw(m *machine, e event) {
	m.fx = append(m.fx, fxThaw{inst: m.inst})
	m.reply(e.reply, nil)
}

// ignoreLate: the main process was found after the instance began to go;
// there is nothing left to follow.
func ignoreLate(m *machine, e event) {}

// ensureJoins: an ensure in backoff waits for the restart the policy has
// scheduled (retrying ensures must not defeat the backoff and the start
// limit); an explicit start starts now.
func ensureJoins(m *machine, e event) {
	if e.ensure && e.differs(m.next.launch) == "" {
		if m.startGuard(e) {
			m.addWaiter(e)
		}
		return
	}
	startFresh(m, e)
}

func limitFreeze(m *machine, e event) {
	m.inst.watchGen++
	m.fx = append(m.fx, fxStopWatch{inst: m.inst}, fxFreeze{inst: m.inst})
	m.to(Frozen, e.at, e.kind, "frozen by the watchdog: "+e.reason)
	m.reply(e.reply, nil)
}

func limitStop(m *machine, e event) {
	m.to(Stopping, e.at, e.kind, "stopped by the watchdog: "+e.reason)
	m.stopCause = m.err(CodeRunaway, "stopped by the watchdog: %s", e.reason)
	m.stopTree(true)
	m.reply(e.reply, nil)
}

// limitRestart ends the instance as a failure: the restart policy, its
// backoff, start limit and restart counter decide what follows.
func limitRestart(m *machine, e event) {
	m.inst.end = &ending{code: CodeRunaway, msg: "runaway: " + e.reason}
	m.emit(journal.Exit, "instance ended by the watchdog: "+e.reason, map[string]string{"cause": string(CodeRunaway)})
	m.to(Ending, e.at, e.kind, "ended by the watchdog: "+e.reason)
	m.stopTree(true)
	m.reply(e.reply, nil)
}

// limitWarn lets it run; the watchdog may have frozen it to look.
func limitWarn(m *machine, e event) {
	m.fx = append(m.fx, fxThaw{inst: m.inst})
	m.reply(e.reply, nil)
}

func spawnChecked(m *machine, e event) {
	argv, err := m.argvFor(m.next.launch)
	if err != nil { // the profile went away in a reload (or the command became a shell line)
		refused(m, event{kind: EvRefused, at: e.at, code: CodeBadRequest, err: errors.New(err.Msg)})
		return
	}
	m.fx = append(m.fx, fxSpawn{gen: m.gen, next: m.next, argv: argv})
}

func becomeExternal(m *machine, e event) {
	m.emit(journal.External, fmt.Sprintf("already served by pids %v, not started by corral: adopted as external, never stopped", e.external), nil)
	m.to(External, e.at, e.kind, "served by a process corral did not start")
	m.external = e.external
}

func refused(m *machine, e event) {
	m.emit(journal.Refused, "start refused: "+e.err.Error(), map[string]string{"code": string(e.code)})
	m.fail(Failed, e.at, e.kind, m.err(e.code, "start refused: %v", e.err))
}

func spawned(m *machine, e event) {
	m.inst = e.newInst
	m.hist = m.cfg.Restart.Started(m.hist, e.at, m.next.manual)
	m.starts++
	m.to(Starting, e.at, e.kind, "starting")
	m.fx = append(m.fx, fxWatchReady{inst: m.inst})
}

func becomeReady(m *machine, e event) {
	m.inst.ready = true
	m.emit(journal.Ready, "ready", nil)
	m.to(Ready, e.at, e.kind, "ready")
	m.fx = append(m.fx, fxWatchHealth{inst: m.inst})
}

// end begins the end of an instance that ended or failed on its own: the
// rest of its tree is stopped, then the policy decides.
func (m *machine) end(e event, end *ending) {
	kill := m.state == Frozen
	m.inst.end = end
	m.to(Ending, e.at, e.kind, end.msg)
	m.stopTree(kill)
}

func notReady(m *machine, e event) {
	msg := "readiness probe failed: " + e.err.Error()
	m.emit(journal.NotReady, "readiness probe failed: "+e.err.Error(), nil)
	m.end(e, &ending{code: CodeNotReady, msg: msg})
}

func healthOK(m *machine, e event) { m.inst.healthBad = 0 }

func healthyAgain(m *machine, e event) {
	m.inst.healthBad = 0
	m.emit(journal.Health, "liveness probe passed again", nil)
	m.to(Ready, e.at, e.kind, "ready")
}

func healthBad(m *machine, e event) {
	m.inst.healthBad++
	failures := m.inst.cfg.Health.Failures
	msg := fmt.Sprintf("liveness probe failed (%d of %d): %v", m.inst.healthBad, failures, e.err)
	m.emit(journal.Health, msg, nil)
	if m.inst.healthBad >= failures {
		m.end(e, &ending{code: CodeUnhealthy, msg: msg})
		return
	}
	m.to(Unhealthy, e.at, e.kind, msg)
}

// handover: the main process exited 0 and a successor of its tree takes
// over; the instance goes on once the successor is ready (its readiness
// is bounded by the ready timeout; not ready = the instance ended).
func handover(m *machine, e event) {
	inst := m.inst
	inst.prevMain, inst.main, inst.mainWhy = e.oldPID, e.pid, e.how
	inst.ready, inst.healthBad = false, 0
	m.emit(journal.Handover, fmt.Sprintf("handover: pid %d exited 0, pid %d takes over (%s); waiting for it to be ready", e.oldPID, e.pid, e.how),
		map[string]string{"old_pid": fmt.Sprint(e.oldPID), "new_pid": fmt.Sprint(e.pid)})
	inst.watchGen++
	m.fx = append(m.fx, fxStopWatch{inst: inst})
	m.to(Handover, e.at, e.kind, fmt.Sprintf("handed over from pid %d to pid %d", e.oldPID, e.pid))
	m.fx = append(m.fx, fxWatchReady{inst: inst}, fxFollowMain{inst: inst, pid: e.pid})
}

// handOverFrozen: a frozen tree's main changed hands just before the
// freeze; it stays frozen, under its new main.
func handOverFrozen(m *machine, e event) {
	m.inst.prevMain, m.inst.main, m.inst.mainWhy = e.oldPID, e.pid, e.how
	m.emit(journal.Handover, fmt.Sprintf("handover: pid %d exited 0, pid %d takes over (%s); the tree is frozen", e.oldPID, e.pid, e.how),
		map[string]string{"old_pid": fmt.Sprint(e.oldPID), "new_pid": fmt.Sprint(e.pid)})
	m.fx = append(m.fx, fxFollowMain{inst: m.inst, pid: e.pid})
}

func mainFound(m *machine, e event) {
	m.inst.main, m.inst.mainWhy = e.pid, e.how
	m.emit(journal.Main, fmt.Sprintf("main process is pid %d (%s)", e.pid, e.how), map[string]string{"pid": fmt.Sprint(e.pid)})
	if m.state == Starting && m.inst.cfg.Ready.IsZero() && m.inst.cfg.PIDFile != "" {
		becomeReady(m, e) // a forking daemon without a probe: ready once its master is known
	}
}

func exited(m *machine, e event) {
	m.lastExit = e.exit
	desc := e.exit.Description
	if e.restartFile {
		msg := fmt.Sprintf("the program asked to be started again (%s) and exited", m.inst.cfg.RestartFile)
		m.emit(journal.Restart, msg+"; restarting at once", map[string]string{"by": "program"})
		m.end(e, &ending{code: CodeExited, msg: msg, exit: e.exit, programRestart: true})
		return
	}
	m.emit(journal.Exit, "instance ended: "+desc, map[string]string{"code": fmt.Sprint(e.exit.Code), "signaled": fmt.Sprint(e.exit.Signaled)})
	if e.lingers > 0 && e.exit.Code == 0 && !e.exit.Signaled {
		// A program that forks into the background and exits 0: its tree
		// is what serves. Stopping it is right by the config; say why.
		hint := fmt.Sprintf("the leader exited 0 while %d processes of its tree live on: the program daemonizes; set lifetime = \"tree\" or pidfile = \"...\" so corral follows it instead of stopping it", e.lingers)
		m.emit(journal.Exit, hint, map[string]string{"hint": "daemonizes"})
		desc += "; " + hint
	}
	m.end(e, &ending{code: CodeExited, msg: desc, exit: e.exit, lingers: e.lingers})
}

// noteExit records how the leader of a tree being stopped ended.
func noteExit(m *machine, e event) {
	m.lastExit = e.exit
	m.lastExit.Requested = m.state == Stopping || m.state == Restarting
}

// emptied records a stop that emptied the tree and lets the instance go.
func (m *machine) emptied(e event) *instance {
	inst := m.inst
	rep := e.report
	m.lastStop = rep
	if e.hookNote != "" {
		m.emit(journal.Signal, e.hookNote, map[string]string{"signal": "hook"})
	}
	if rep.Signalled > 0 {
		m.emit(journal.Signal, fmt.Sprintf("%s to %d members; %d exited on it", rep.Signal, rep.Signalled, rep.Exited),
			map[string]string{"signal": rep.Signal, "members": fmt.Sprint(rep.Signalled), "exited": fmt.Sprint(rep.Exited)})
	}
	if rep.Killed > 0 {
		m.emit(journal.Kill, fmt.Sprintf("killed %d members left after the grace period", rep.Killed), map[string]string{"members": fmt.Sprint(rep.Killed)})
	}
	m.emit(journal.Stopped, fmt.Sprintf("tree empty: %d signalled, %d exited, %d killed in %v", rep.Signalled, rep.Exited, rep.Killed, rep.Duration.Round(time.Millisecond)),
		map[string]string{"duration_ms": fmt.Sprint(rep.Duration.Milliseconds())})
	m.fx = append(m.fx, fxRelease{inst: inst})
	// A stop that a later start overtook is answered now: its tree is
	// verified empty, which is all a stop promises.
	keep := m.waiters[:0]
	for _, w := range m.waiters {
		if w.want == waitStopped {
			m.reply(w.ch, nil)
		} else {
			keep = append(keep, w)
		}
	}
	m.waiters = keep
	if m.lastExit == nil || m.lastExit.At.Before(inst.started) {
		m.lastExit = &ExitInfo{At: e.at, Code: -1, Description: "stopped"}
	}
	m.inst = nil
	return inst
}

func emptyStopped(m *machine, e event) {
	inst := m.emptied(e)
	if c := m.stopCause; c != nil {
		m.stopCause = nil
		m.fail(Stopped, e.at, e.kind, c)
		return
	}
	m.lastExit.Requested = inst.end == nil // a crash a stop joined stays a crash
	reason := "stopped"
	if m.reason != "stop requested" {
		reason = m.reason
	}
	m.to(Stopped, e.at, e.kind, reason)
}

func emptyRestart(m *machine, e event) {
	inst := m.emptied(e)
	m.lastExit.Requested = inst.end == nil
	m.check(e, m.next, "checking ports before the start")
}

// emptyDecide: the tree of an instance that ended on its own is gone; the
// restart policy decides what follows.
func emptyDecide(m *machine, e event) {
	inst := m.emptied(e)
	if inst.end.programRestart {
		// Not a failure, no backoff, no policy: the program's own restart,
		// told it is one (A1111 then opens no new browser tab).
		m.lastExit.Requested = true
		m.check(e, pending{launch: inst.launch, manual: true, env: []string{"SD_WEBUI_RESTARTING=1"}}, "restarting as the program asked")
		return
	}
	d, end := m.decide(e.at, e.rand, inst)
	m.next = pending{launch: inst.launch}
	switch d.Action {
	case restart.Restart:
		// The delay counts from the end of the instance: the stop of its
		// remains already took part of it.
		d.Delay = max(0, d.Delay-e.at.Sub(m.since))
		m.emit(journal.Restart, fmt.Sprintf("restarting in %v: %s", d.Delay.Round(time.Millisecond), d.Reason), map[string]string{"cause": string(end.code)})
		m.to(Backoff, e.at, e.kind, fmt.Sprintf("restarting in %v after: %s", d.Delay.Round(time.Millisecond), d.Reason))
		m.cause = m.err(end.code, "%s", end.msg)
		m.nextStart = e.at.Add(d.Delay)
		m.fx = append(m.fx, fxTimer{gen: m.gen, d: d.Delay})
	case restart.Fail:
		m.emit(journal.Failed, d.Reason, map[string]string{"rearm_at": d.RearmAt.Format(time.RFC3339)})
		m.fail(Failed, e.at, e.kind, m.err(CodeStartLimit, "failed: %s", d.Reason))
		if !d.RearmAt.IsZero() {
			m.nextStart = d.RearmAt
			m.fx = append(m.fx, fxTimer{gen: m.gen, d: d.RearmAt.Sub(e.at)})
		}
	default:
		clean := end.code == CodeExited && end.exit != nil && end.exit.Code == 0 && !end.exit.Signaled
		// Done only for a run that did its job: one that exited 0 before it
		// was ready, or left processes behind (a daemonizer), did not.
		if clean && end.lingers == 0 && (inst.ready || inst.cfg.Ready.IsZero()) {
			m.to(Done, e.at, e.kind, d.Reason)
			return
		}
		if clean && !inst.ready && !inst.cfg.Ready.IsZero() {
			m.fail(Failed, e.at, e.kind, m.err(CodeExited, "exited 0 before it was ready: %s (%s)", end.msg, d.Reason))
			return
		}
		m.fail(Failed, e.at, e.kind, m.err(end.code, "%s (%s)", end.msg, d.Reason))
	}
}

func stopFailed(m *machine, e event) {
	m.lastStop = e.report
	m.emit(journal.Failed, "stop incomplete: "+e.err.Error(), nil)
	m.fail(StopFailed, e.at, e.kind, m.err(CodeStopIncomplete, "stop incomplete: %v", e.err))
}

func timerStart(m *machine, e event) {
	m.restarts++
	m.check(e, pending{launch: m.next.launch}, "checking ports before the restart")
}
