package service

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/restart"
	"github.com/corral-sh/corral/proctree"
)

// Scenarios: whole paths through the machine, each a bug users hit, driven
// through step with the stale filter, as the loop drives it.

// fakeExec plays the executor: it answers effects the way the real one
// would, with the events the test chooses.
type fakeExec struct {
	t  *testing.T
	m  *machine
	at time.Time
	fx []effect
}

func newFake(t *testing.T, cfg *config.Service) *fakeExec {
	return &fakeExec{t: t, m: &machine{name: cfg.Name, cfg: cfg, state: Stopped, since: t0}, at: t0}
}

func (f *fakeExec) send(e event) []effect {
	e.at, e.rand = f.at, 0.5
	fx := f.m.step(e)
	f.fx = append(f.fx, fx...)
	return fx
}

func (f *fakeExec) request(k EventKind, w waitFor, mod ...func(*event)) chan reply {
	e := event{kind: k, reply: make(chan reply, 8), wait: w}
	for _, fn := range mod {
		fn(&e)
	}
	for _, fx := range f.send(e) {
		if r, ok := fx.(fxReply); ok {
			r.ch <- reply{err: r.err}
		}
	}
	return e.reply
}

// deliver sends the replies among fx.
func deliver(fx []effect) {
	for _, f := range fx {
		if r, ok := f.(fxReply); ok {
			r.ch <- reply{err: r.err}
		}
	}
}

func (f *fakeExec) result(e event) {
	if e.gen == 0 {
		e.gen = f.m.gen
	}
	if f.m.inst != nil && e.inst == "" {
		e.inst, e.watchGen = f.m.inst.id, f.m.inst.watchGen
	}
	deliver(f.send(e))
}

// start runs preflight, spawn and readiness as the executor would.
func (f *fakeExec) spawnOK(id string) {
	f.result(event{kind: EvChecked})
	f.result(event{kind: EvSpawned, newInst: &instance{cfg: f.m.cfg, id: id, started: f.at}})
}

func (f *fakeExec) want(s State) {
	f.t.Helper()
	if f.m.state != s {
		f.t.Fatalf("state %s (%s), want %s", f.m.state, f.m.reason, s)
	}
}

func got(t *testing.T, ch chan reply) error {
	t.Helper()
	select {
	case r := <-ch:
		return r.err
	default:
		t.Fatal("no answer yet")
		return nil
	}
}

func pending_(t *testing.T, ch chan reply) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("answered too early: %v", r.err)
	default:
	}
}

func crash(f *fakeExec, code int) {
	f.result(event{kind: EvExited, exit: &ExitInfo{At: f.at, Code: code, Description: "exit status " + string(rune('0'+code))}})
	f.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
}

// The bug: a service stuck in backoff forever ("event external cannot
// happen in state backoff"): a policy restart found a healthy foreign
// server on the port. Now the restart goes through Checking, whose row
// takes it, and the ensure waiting through the restarts is answered.
func TestScenarioBackoffIntoExternal(t *testing.T) {
	f := newFake(t, pureConfig())
	ch := f.request(EvStart, waitReady, func(e *event) { e.ensure = true })
	f.spawnOK("i1")
	f.result(event{kind: EvReady})
	if err := got(t, ch); err != nil {
		t.Fatal(err)
	}
	again := f.request(EvStart, waitReady, func(e *event) { e.ensure = true })
	if err := got(t, again); err != nil {
		t.Fatal(err)
	}
	crash(f, 1)
	f.want(Backoff)
	waiting := f.request(EvStart, waitReady, func(e *event) { e.ensure = true })
	// An ensure in backoff joins the restart the policy scheduled.
	f.want(Backoff)
	f.result(event{kind: EvTimer})
	f.want(Checking)
	f.result(event{kind: EvFoundExt, external: []int{4242}})
	f.want(External)
	if err := got(t, waiting); err != nil {
		t.Fatalf("ensure answered %v", err)
	}
	// The policy's own timer path, too: backoff → timer → checking → external.
	g2 := newFake(t, pureConfig())
	g2.request(EvStart, waitRunning)
	g2.spawnOK("i1")
	g2.result(event{kind: EvReady})
	crash(g2, 1)
	g2.result(event{kind: EvTimer})
	g2.want(Checking)
	g2.result(event{kind: EvFoundExt, external: []int{4242}})
	g2.want(External)
	if g2.m.restarts != 1 {
		t.Fatalf("restarts %d", g2.m.restarts)
	}
}

// The bug: `corral up` ran a one-shot twice (the autostart's ensure, then
// up's). A one-shot that completed is done; ensure is satisfied by it and
// spawns nothing; an explicit start runs it again, once.
func TestScenarioOneShotRunsOncePerRequest(t *testing.T) {
	cfg := pureConfig()
	cfg.Ready, cfg.Health = config.Probe{}, config.Health{}
	cfg.Restart.Mode = restart.Never
	f := newFake(t, cfg)
	first := f.request(EvStart, waitReady, func(e *event) { e.ensure = true })
	f.spawnOK("i1")
	f.result(event{kind: EvReady})
	if err := got(t, first); err != nil {
		t.Fatal(err)
	}
	crash(f, 0)
	f.want(Done)
	n := len(f.fx)
	second := f.request(EvStart, waitReady, func(e *event) { e.ensure = true })
	if err := got(t, second); err != nil {
		t.Fatalf("ensure of a completed one-shot: %v", err)
	}
	for _, fx := range f.fx[n:] {
		if _, ok := fx.(fxPreflight); ok {
			t.Fatal("ensure of a completed one-shot started it again")
		}
	}
	f.want(Done)
	// Negative control: start (not ensure) is a request to run it again.
	f.request(EvStart, waitRunning)
	f.want(Checking)
	if f.m.starts != 1 {
		t.Fatalf("starts %d before the second spawn", f.m.starts)
	}
}

// The bug: on_limit = "restart" ignored the backoff and the start limit,
// and RESTARTS stayed 0. The watchdog's restart now ends the instance as a
// failure: the policy's delay, counter and limit apply.
func TestScenarioWatchdogRestartGoesThroughPolicy(t *testing.T) {
	cfg := pureConfig()
	cfg.Restart = restart.Policy{Mode: restart.OnFailure, Backoff: 5 * time.Second, MaxBackoff: time.Minute, Burst: 3, Window: time.Minute}
	f := newFake(t, cfg)
	f.request(EvStart, waitRunning)
	var delays []time.Duration
	for i := 0; i < 3; i++ {
		f.spawnOK("i" + string(rune('1'+i)))
		f.result(event{kind: EvReady})
		f.request(EvLimitRestart, waitNone, func(e *event) { e.reason = "processes 80 > 64" })
		f.want(Ending)
		fx := f.send(event{kind: EvEmpty, inst: f.m.inst.id, report: &proctree.StopReport{}})
		for _, x := range fx {
			if tm, ok := x.(fxTimer); ok {
				delays = append(delays, tm.d)
			}
		}
		if i < 2 {
			f.want(Backoff)
			f.at = f.at.Add(delays[len(delays)-1])
			f.result(event{kind: EvTimer})
		}
	}
	// Each runaway became ready first (established): backoff each time,
	// never the zero-delay respawn the old code did.
	if len(delays) < 2 || delays[0] != 5*time.Second || delays[1] != 5*time.Second {
		t.Fatalf("delays %v, want the policy's 5s", delays)
	}
	if f.m.restarts != 2 {
		t.Fatalf("restarts %d, want 2", f.m.restarts)
	}
	f.want(Failed)
	if f.m.cause.Code != CodeStartLimit || !strings.Contains(f.m.cause.Msg, "runaway: processes 80 > 64") {
		t.Fatalf("cause %+v", f.m.cause)
	}
}

// The bug: a readiness failure said "stopped: restart policy is never",
// the probe's error lived only in the journal. The waiter now gets the
// probe's error under its own code.
func TestScenarioReadinessFailureSaysWhy(t *testing.T) {
	cfg := pureConfig()
	cfg.Restart.Mode = restart.Never
	f := newFake(t, cfg)
	ch := f.request(EvStart, waitReady, func(e *event) { e.ensure = true })
	f.spawnOK("i1")
	f.result(event{kind: EvNotReady, err: errors.New("not ready after 2s: dial tcp 127.0.0.1:7860: connect: connection refused")})
	f.want(Ending)
	pending_(t, ch)
	f.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
	f.want(Failed)
	err := got(t, ch)
	if CodeOf(err) != CodeNotReady || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "not ready after 2s") {
		t.Fatalf("ensure answered %v (code %q)", err, CodeOf(err))
	}
	if strings.Contains(f.m.reason, "health") {
		t.Fatalf("reason %q calls readiness health", f.m.reason)
	}
	// With on-failure, the reason of the backoff names readiness too.
	cfg2 := pureConfig()
	g := newFake(t, cfg2)
	g.request(EvStart, waitRunning)
	g.spawnOK("i1")
	g.result(event{kind: EvNotReady, err: errors.New("not ready after 2s: connection refused")})
	g.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
	g.want(Backoff)
	if !strings.Contains(g.m.reason, "not ready") || strings.Contains(g.m.reason, "health") {
		t.Fatalf("backoff reason %q", g.m.reason)
	}
}

// The bug: a profile given to start on a running service was silently
// ignored. Now it is refused, or switches it when asked.
func TestScenarioProfileMismatch(t *testing.T) {
	f := newFake(t, pureConfig())
	f.request(EvStart, waitRunning, func(e *event) { e.profile = "guarded" })
	f.spawnOK("i1")
	f.m.inst.profile = "guarded"
	f.result(event{kind: EvReady})
	if err := got(t, f.request(EvStart, waitRunning, func(e *event) { e.profile = "cpu" })); CodeOf(err) != CodeProfileMismatch {
		t.Fatalf("start with another profile: %v", err)
	}
	if err := got(t, f.request(EvStart, waitReady, func(e *event) { e.ensure = true })); err != nil {
		t.Fatalf("ensure without a profile: %v", err)
	}
	if err := got(t, f.request(EvStart, waitReady, func(e *event) { e.ensure, e.profile = true, "guarded" })); err != nil {
		t.Fatalf("ensure with the running profile: %v", err)
	}
	if err := got(t, f.request(EvStart, waitRunning, func(e *event) { e.profile = "nope" })); CodeOf(err) != CodeBadRequest {
		t.Fatalf("unknown profile: %v", err)
	}
	f.want(Ready)
	ch := f.request(EvStart, waitReady, func(e *event) { e.profile, e.switchProfile = "cpu", true })
	f.want(Restarting)
	pending_(t, ch)
	f.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
	f.want(Checking)
	if f.m.next.profile != "cpu" || !f.m.next.manual {
		t.Fatalf("next %+v", f.m.next)
	}
}

// Results of work the machine has moved past are dropped before the table:
// a readiness result of a stopped probe, a timer of an earlier backoff, a
// limit breach of an instance that is gone (still answered).
func TestStaleResultsAreDropped(t *testing.T) {
	f := newFake(t, pureConfig())
	f.request(EvStart, waitRunning)
	f.spawnOK("i1")
	gen := f.m.inst.watchGen
	f.request(EvLimitFreeze, waitNone, func(e *event) { e.inst, e.reason = "i1", "x" })
	f.want(Frozen)
	if fx := f.m.step(event{kind: EvReady, inst: "i1", watchGen: gen, at: t0}); len(fx) != 0 || f.m.state != Frozen {
		t.Fatalf("a probe result from before the freeze acted: %s", fxNames(fx))
	}
	ch := make(chan reply, 1)
	fx := f.m.step(event{kind: EvLimitStop, inst: "old", reply: ch, at: t0})
	if fxNames(fx) != "reply" || f.m.state != Frozen {
		t.Fatalf("a breach of a gone instance: %s", fxNames(fx))
	}
	if fx := f.m.step(event{kind: EvTimer, gen: f.m.gen - 1, at: t0}); len(fx) != 0 {
		t.Fatalf("an old timer acted: %s", fxNames(fx))
	}
}

// A stop that cannot empty the tree is its own state: nothing starts
// beside the tree, another stop retries with a kill, and a waiter hears
// why.
func TestScenarioStopFailedKeepsTheTree(t *testing.T) {
	f := newFake(t, pureConfig())
	f.request(EvStart, waitRunning)
	f.spawnOK("i1")
	f.result(event{kind: EvReady})
	ch := f.request(EvStop, waitStopped)
	f.result(event{kind: EvStopFail, report: &proctree.StopReport{}, err: errors.New("2 members left: pid 7, pid 8")})
	f.want(StopFailed)
	if err := got(t, ch); CodeOf(err) != CodeStopIncomplete || !strings.Contains(err.Error(), "pid 7") {
		t.Fatalf("stop answered %v", err)
	}
	if err := got(t, f.request(EvStart, waitRunning)); CodeOf(err) != CodeStopIncomplete {
		t.Fatalf("start beside a kept tree: %v", err)
	}
	again := f.request(EvStop, waitStopped)
	if !strings.Contains(fxNames(f.fx[len(f.fx)-2:]), "kill") {
		t.Fatalf("the retry does not kill: %s", fxNames(f.fx))
	}
	f.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
	if err := got(t, again); err != nil || f.m.state != Stopped {
		t.Fatalf("second stop: %v, %s", err, f.m.state)
	}
}

// The watchdog's stop is not a stop anybody asked for: the service ends
// stopped with the runaway as its cause, and last_exit is not "requested".
// A user's stop that joins it makes it one.
func TestScenarioWatchdogStopKeepsItsCause(t *testing.T) {
	for _, userJoins := range []bool{false, true} {
		f := newFake(t, pureConfig())
		f.request(EvStart, waitRunning)
		f.spawnOK("i1")
		f.result(event{kind: EvReady})
		f.request(EvLimitStop, waitNone, func(e *event) { e.reason = "memory 30GiB > 24GiB" })
		var ch chan reply
		if userJoins {
			ch = f.request(EvStop, waitStopped)
		}
		f.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
		f.want(Stopped)
		switch {
		case userJoins:
			if f.m.cause != nil || !f.m.lastExit.Requested || got(t, ch) != nil {
				t.Fatalf("joined by a user: cause %v, requested %v", f.m.cause, f.m.lastExit.Requested)
			}
		case f.m.cause == nil || f.m.cause.Code != CodeRunaway || f.m.lastExit.Requested:
			t.Fatalf("cause %v, last exit %+v", f.m.cause, f.m.lastExit)
		}
	}
}

// A forking daemon with no readiness probe is ready when its main process
// is known from the pidfile, not at the spawn of its launcher.
func TestScenarioPidfileWithoutProbeIsReadyAtItsMain(t *testing.T) {
	cfg := pureConfig()
	cfg.Ready, cfg.PIDFile = config.Probe{}, "/run/d.pid"
	f := newFake(t, cfg)
	ch := f.request(EvStart, waitReady)
	f.spawnOK("i1")
	f.want(Starting)
	pending_(t, ch)
	f.result(event{kind: EvMain, pid: 99, how: "from /run/d.pid"})
	f.want(Ready)
	if err := got(t, ch); err != nil || f.m.inst.main != 99 {
		t.Fatalf("%v, main %d", err, f.m.inst.main)
	}
}

// A stop overtaken by a start (the start queues behind it) is answered once
// its tree is verified empty, not left waiting behind the new instance.
func TestScenarioStopOvertakenByStartIsAnswered(t *testing.T) {
	f := newFake(t, pureConfig())
	f.request(EvStart, waitRunning)
	f.spawnOK("i1")
	f.result(event{kind: EvReady})
	stop := f.request(EvStop, waitStopped)
	start := f.request(EvStart, waitReady, func(e *event) { e.ensure = true })
	f.want(Restarting)
	f.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
	f.want(Checking)
	if err := got(t, stop); err != nil {
		t.Fatalf("the stop: %v", err)
	}
	pending_(t, start)
}

// A server that exits 0 before it is ready (it daemonized, say) did not do
// its job: not done, and ensure hears why.
func TestScenarioExitZeroBeforeReadyIsNoSuccess(t *testing.T) {
	cfg := pureConfig()
	cfg.Restart.Mode = restart.OnFailure
	f := newFake(t, cfg)
	ch := f.request(EvStart, waitReady, func(e *event) { e.ensure = true })
	f.spawnOK("i1")
	f.result(event{kind: EvExited, lingers: 2, exit: &ExitInfo{At: f.at, Code: 0, Description: "exit status 0"}})
	f.result(event{kind: EvEmpty, report: &proctree.StopReport{}})
	f.want(Failed)
	err := got(t, ch)
	if CodeOf(err) != CodeExited || !strings.Contains(err.Error(), "before it was ready") || !strings.Contains(err.Error(), "daemonizes") {
		t.Fatalf("ensure: %v", err)
	}
}
