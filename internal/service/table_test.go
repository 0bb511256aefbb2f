package service

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/restart"
	"github.com/corral-sh/corral/proctree"
)

// These tests drive the machine without processes: events in, effects out
// (a fake executor that only records them). They pin the behaviour of every
// cell of actions, so that deleting or changing any entry fails a test.

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func pureConfig() *config.Service {
	return &config.Service{
		Name: "svc", Argv: []string{"/bin/server"}, Lifetime: config.LifetimeLeader,
		Profiles: map[string][]string{"guarded": {"--medvram"}, "cpu": {"--cpu"}},
		Ready:    config.Probe{Log: regexp.MustCompile("up"), Timeout: time.Second, Interval: 10 * time.Millisecond},
		Health:   config.Health{Probe: config.Probe{TCP: "127.0.0.1:1", Timeout: time.Second, Interval: time.Second}, Failures: 3},
		Restart:  restart.Policy{Mode: restart.Always, Backoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second, Burst: 5, Window: time.Minute, StableAfter: 10 * time.Second},
		Stop:     config.Stop{Signal: syscall.SIGTERM, Grace: time.Second},
	}
}

// in returns a machine in state s, as that state is entered in practice:
// with an instance where the state holds one, a pending start where it
// waits for one.
func in(s State) *machine {
	m := &machine{name: "svc", cfg: pureConfig(), state: s, since: t0, gen: 7}
	inst := &instance{cfg: m.cfg, id: "i1", started: t0.Add(-time.Minute), watchGen: 3}
	switch s {
	case Starting, Frozen, Handover:
		m.inst = inst
	case Ready:
		inst.ready = true
		m.inst = inst
	case Unhealthy:
		inst.ready, inst.healthBad = true, 2
		m.inst = inst
	case Stopping:
		m.inst, m.reason = inst, "stop requested"
	case Restarting:
		m.inst, m.next = inst, pending{manual: true}
	case Ending:
		inst.ready = true
		inst.end = &ending{code: CodeExited, msg: "exit status 1", exit: &ExitInfo{At: t0, Code: 1, Description: "exit status 1"}}
		m.inst = inst
	case StopFailed:
		m.inst, m.cause = inst, newErr("svc", CodeStopIncomplete, "stop incomplete")
	case Checking:
		m.next = pending{manual: true}
	case Failed:
		m.cause = newErr("svc", CodeStartLimit, "failed: started 5 times")
	case External:
		m.external = []int{4242}
	}
	return m
}

// ev builds a plausible event of kind k for machine m: requests with a
// reply channel, results about m's current instance and generation.
func ev(m *machine, k EventKind) event {
	e := event{kind: k, at: t0, rand: 0.5, gen: m.gen, inst: "i1", watchGen: 3}
	if m.inst != nil {
		e.watchGen = m.inst.watchGen
	}
	switch k {
	case EvStart, EvRestart:
		e.reply, e.wait = make(chan reply, 1), waitReady
	case EvStop, EvShutdown:
		e.reply, e.wait = make(chan reply, 1), waitStopped
	case EvLimitFreeze, EvLimitStop, EvLimitRestart, EvLimitWarn:
		e.reply, e.reason = make(chan reply, 1), "processes 80 > 64"
	case EvFoundExt:
		e.external = []int{4242}
	case EvRefused:
		e.code, e.err = CodePortInUse, errors.New("port 7860 is held by pid 4242 (python)")
	case EvSpawned:
		e.newInst = &instance{cfg: m.cfg, id: "i2", started: t0}
	case EvNotReady, EvHealthBad:
		e.err = errors.New("connection refused")
	case EvMain:
		e.pid, e.how = 99, "from /run/x.pid"
	case EvHandover:
		e.pid, e.oldPID, e.how = 100, 99, "started by pid 99"
	case EvExited:
		e.exit = &ExitInfo{At: t0, Code: 1, Description: "exit status 1"}
	case EvEmpty:
		e.report = &proctree.StopReport{Signal: "SIGTERM"}
	case EvStopFail:
		e.report, e.err = &proctree.StopReport{}, errors.New("3 members left")
	}
	return e
}

// fxNames renders effects for comparison; state-change journal lines are
// left out (the next state is compared on its own).
func fxNames(fx []effect) string {
	var out []string
	for _, f := range fx {
		switch f := f.(type) {
		case fxPreflight:
			out = append(out, "preflight")
		case fxSpawn:
			out = append(out, "spawn")
		case fxWatchReady:
			out = append(out, "watchready")
		case fxWatchHealth:
			out = append(out, "watchhealth")
		case fxStopWatch:
			out = append(out, "unwatch")
		case fxStopTree:
			if f.kill {
				out = append(out, "kill")
			} else {
				out = append(out, "stoptree")
			}
		case fxFreeze:
			out = append(out, "freeze")
		case fxThaw:
			out = append(out, "thaw")
		case fxRelease:
			out = append(out, "release")
		case fxFollowMain:
			out = append(out, "followmain")
		case fxTimer:
			out = append(out, "timer")
		case fxCancelTimer:
			out = append(out, "canceltimer")
		case fxJournal:
			if f.kind != journal.State {
				out = append(out, "journal:"+string(f.kind))
			}
		case fxReply:
			if c := CodeOf(f.err); c != "" {
				out = append(out, "reply:"+string(c))
			} else if f.err != nil {
				out = append(out, "reply:error")
			} else {
				out = append(out, "reply")
			}
		case fxBug:
			out = append(out, "bug")
		default:
			out = append(out, fmt.Sprintf("%T", f))
		}
	}
	return strings.Join(out, " ")
}

// apply runs one cell (no stale filter) and settles waiters, as step does.
func apply(m *machine, e event) []effect {
	m.fx = nil
	actions[stateIndex[m.state]][e.kind](m, e)
	m.settle(e.at)
	return m.fx
}

// want is the behaviour of every cell: "next-state | effects". A missing
// event in a row means the cell is impossible: it must log a bug and
// change nothing.
var want = map[State]map[EventKind]string{
	Stopped: {
		EvStart: "checking | canceltimer preflight", EvRestart: "checking | canceltimer preflight",
		EvStop: "stopped | canceltimer reply", EvShutdown: "stopped | canceltimer reply",
		EvLimitFreeze: "stopped | reply", EvLimitStop: "stopped | reply", EvLimitRestart: "stopped | reply", EvLimitWarn: "stopped | reply",
	},
	Checking: {
		EvStart: "checking | ", EvRestart: "checking | ",
		EvStop: "stopped | canceltimer reply", EvShutdown: "stopped | canceltimer reply",
		EvLimitFreeze: "checking | reply", EvLimitStop: "checking | reply", EvLimitRestart: "checking | reply", EvLimitWarn: "checking | reply",
		EvChecked: "checking | spawn", EvFoundExt: "external | journal:external", EvRefused: "failed | journal:refused",
		EvSpawned: "starting | watchready",
	},
	Starting: {
		EvStart: "starting | ", EvRestart: "restarting | unwatch stoptree",
		EvStop: "stopping | unwatch stoptree", EvShutdown: "stopping | unwatch stoptree",
		EvLimitFreeze: "frozen | unwatch freeze reply", EvLimitStop: "stopping | unwatch kill reply",
		EvLimitRestart: "ending | journal:exit unwatch kill reply", EvLimitWarn: "starting | thaw reply",
		EvReady: "ready | journal:ready watchhealth", EvNotReady: "ending | journal:not-ready unwatch stoptree",
		EvMain: "starting | journal:main", EvExited: "ending | journal:exit unwatch stoptree",
		EvHandover: "handover | journal:handover unwatch watchready followmain",
	},
	Ready: {
		EvStart: "ready | reply", EvRestart: "restarting | unwatch stoptree",
		EvStop: "stopping | unwatch stoptree", EvShutdown: "stopping | unwatch stoptree",
		EvLimitFreeze: "frozen | unwatch freeze reply", EvLimitStop: "stopping | unwatch kill reply",
		EvLimitRestart: "ending | journal:exit unwatch kill reply", EvLimitWarn: "ready | thaw reply",
		EvHealthOK: "ready | ", EvHealthBad: "unhealthy | journal:health",
		EvMain: "ready | journal:main", EvExited: "ending | journal:exit unwatch stoptree",
		EvHandover: "handover | journal:handover unwatch watchready followmain",
	},
	Unhealthy: {
		EvStart: "unhealthy | reply", EvRestart: "restarting | unwatch stoptree",
		EvStop: "stopping | unwatch stoptree", EvShutdown: "stopping | unwatch stoptree",
		EvLimitFreeze: "frozen | unwatch freeze reply", EvLimitStop: "stopping | unwatch kill reply",
		EvLimitRestart: "ending | journal:exit unwatch kill reply", EvLimitWarn: "unhealthy | thaw reply",
		EvHealthOK: "ready | journal:health", EvHealthBad: "ending | journal:health unwatch stoptree",
		EvMain: "unhealthy | journal:main", EvExited: "ending | journal:exit unwatch stoptree",
		EvHandover: "handover | journal:handover unwatch watchready followmain",
	},
	Frozen: {
		EvStart: "frozen | reply:frozen", EvRestart: "restarting | unwatch kill",
		EvStop: "stopping | unwatch kill", EvShutdown: "stopping | unwatch kill",
		EvLimitFreeze: "frozen | reply", EvLimitStop: "stopping | unwatch kill reply",
		EvLimitRestart: "ending | journal:exit unwatch kill reply", EvLimitWarn: "frozen | reply",
		EvMain: "frozen | journal:main", EvExited: "ending | journal:exit unwatch kill",
		EvHandover: "frozen | journal:handover followmain",
	},
	Stopping: {
		EvStart: "restarting | ", EvRestart: "restarting | ", EvStop: "stopping | ", EvShutdown: "stopping | ",
		EvLimitFreeze: "stopping | thaw reply", EvLimitStop: "stopping | thaw reply", EvLimitRestart: "stopping | thaw reply", EvLimitWarn: "stopping | thaw reply",
		EvMain:   "stopping | ",
		EvExited: "stopping | ", EvEmpty: "stopped | journal:stopped release", EvStopFail: "stop-failed | journal:failed",
		EvHandover: "stopping | ",
	},
	Restarting: {
		EvStart: "restarting | ", EvRestart: "restarting | ", EvStop: "stopping | ", EvShutdown: "stopping | ",
		EvLimitFreeze: "restarting | thaw reply", EvLimitStop: "restarting | thaw reply", EvLimitRestart: "restarting | thaw reply", EvLimitWarn: "restarting | thaw reply",
		EvMain:   "restarting | ",
		EvExited: "restarting | ", EvEmpty: "checking | journal:stopped release canceltimer preflight", EvStopFail: "stop-failed | journal:failed",
		EvHandover: "restarting | ",
	},
	Ending: {
		EvStart: "restarting | ", EvRestart: "restarting | ", EvStop: "stopping | ", EvShutdown: "stopping | ",
		EvLimitFreeze: "ending | thaw reply", EvLimitStop: "ending | thaw reply", EvLimitRestart: "ending | thaw reply", EvLimitWarn: "ending | thaw reply",
		EvMain:   "ending | ",
		EvExited: "ending | ", EvEmpty: "backoff | journal:stopped release journal:restart timer", EvStopFail: "stop-failed | journal:failed",
		EvHandover: "ending | ",
	},
	Backoff: {
		EvStart: "checking | canceltimer preflight", EvRestart: "checking | canceltimer preflight",
		EvStop: "stopped | canceltimer reply", EvShutdown: "stopped | canceltimer reply",
		EvLimitFreeze: "backoff | reply", EvLimitStop: "backoff | reply", EvLimitRestart: "backoff | reply", EvLimitWarn: "backoff | reply",
		EvTimer: "checking | canceltimer preflight",
	},
	Failed: {
		EvStart: "checking | canceltimer preflight", EvRestart: "checking | canceltimer preflight",
		EvStop: "stopped | canceltimer reply", EvShutdown: "stopped | canceltimer reply",
		EvLimitFreeze: "failed | reply", EvLimitStop: "failed | reply", EvLimitRestart: "failed | reply", EvLimitWarn: "failed | reply",
		EvTimer: "checking | canceltimer preflight",
	},
	Done: {
		EvStart: "checking | canceltimer preflight", EvRestart: "checking | canceltimer preflight",
		EvStop: "stopped | canceltimer reply", EvShutdown: "stopped | canceltimer reply",
		EvLimitFreeze: "done | reply", EvLimitStop: "done | reply", EvLimitRestart: "done | reply", EvLimitWarn: "done | reply",
	},
	StopFailed: {
		EvStart: "stop-failed | reply:stop_incomplete", EvRestart: "restarting | unwatch kill",
		EvStop: "stopping | unwatch kill", EvShutdown: "stopping | unwatch kill",
		EvLimitFreeze: "stop-failed | reply", EvLimitStop: "stop-failed | reply", EvLimitRestart: "stop-failed | reply", EvLimitWarn: "stop-failed | reply",
		EvExited: "stop-failed | ", EvMain: "stop-failed | ",
		EvHandover: "stop-failed | ",
	},
	External: {
		EvStart: "checking | canceltimer preflight", EvRestart: "external | reply:external",
		EvStop: "stopped | canceltimer reply", EvShutdown: "stopped | canceltimer reply",
		EvLimitFreeze: "external | reply", EvLimitStop: "external | reply", EvLimitRestart: "external | reply", EvLimitWarn: "external | reply",
	},
	Handover: {
		EvStart: "handover | ", EvRestart: "restarting | unwatch stoptree",
		EvStop: "stopping | unwatch stoptree", EvShutdown: "stopping | unwatch stoptree",
		EvLimitFreeze: "frozen | unwatch freeze reply", EvLimitStop: "stopping | unwatch kill reply",
		EvLimitRestart: "ending | journal:exit unwatch kill reply", EvLimitWarn: "handover | thaw reply",
		EvReady: "ready | journal:ready watchhealth", EvNotReady: "ending | journal:not-ready unwatch stoptree",
		EvMain: "handover | journal:main", EvExited: "ending | journal:exit unwatch stoptree",
		EvHandover: "handover | journal:handover unwatch watchready followmain",
	},
}

func TestEveryCellBehaves(t *testing.T) {
	for _, s := range States {
		for k := EventKind(0); k < numEvents; k++ {
			if actions[stateIndex[s]][k] == nil {
				t.Errorf("actions[%s][%s] is empty: every cell must say what the event does", s, k)
				continue
			}
			m := in(s)
			fx := apply(m, ev(m, k))
			got := fmt.Sprintf("%s | %s", m.state, fxNames(fx))
			exp, ok := want[s][k]
			if !ok {
				exp = fmt.Sprintf("%s | bug", s)
			}
			if got != exp {
				t.Errorf("%s --%s--> %q, want %q", s, k, got, exp)
			}
		}
	}
}

// drive runs events through step (stale filter included) and returns all
// effects.
func drive(m *machine, es ...event) []effect {
	var all []effect
	for _, e := range es {
		all = append(all, m.step(e)...)
	}
	return all
}

func replies(fx []effect) []error {
	var out []error
	for _, f := range fx {
		if r, ok := f.(fxReply); ok {
			out = append(out, r.err)
		}
	}
	return out
}
