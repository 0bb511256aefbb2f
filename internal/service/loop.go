package service

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
)

// Events the loop handles itself: they change no lifecycle state.
const (
	evConfigure EventKind = numEvents + 1 + iota // replace the configuration (applies from the next start)
	evForget                                     // a caller gave up waiting: drop its waiter
)

// loop is the owner goroutine: it feeds events to the machine and executes
// the effects. Everything here is touched by that goroutine only.
type loop struct {
	s *Service
	m *machine
	// timer is the one backoff or re-arm timer.
	timer interface{ Stop() bool }
	// watch is the instance whose end the loop selects on, and the
	// channels it selects on (nil once seen).
	watch        *instance
	leaderExited <-chan struct{}
	treeDone     <-chan struct{}
	// probes ends the probes of an instance (by id); watchers ends what
	// follows its main process (pidfile, successor), which a freeze leaves
	// running.
	probes   map[string]context.CancelFunc
	watchers map[string]context.CancelFunc
	// closing: Close was called while a tree was left; the loop ends once
	// that tree's stop has been seen.
	closing bool
	// outbox holds the replies of one handle: they go out after the
	// snapshot is published, so a caller that reads Status next sees at
	// least what its answer said.
	outbox []outgoing
}

type outgoing struct {
	ch  chan reply
	rep reply
}

func newLoop(s *Service, cfg *config.Service) *loop {
	m := &machine{name: cfg.Name, cfg: cfg, state: Stopped, since: s.deps.Clock.Now(), reason: "never started"}
	return &loop{s: s, m: m, probes: map[string]context.CancelFunc{}, watchers: map[string]context.CancelFunc{}}
}

func (l *loop) run() {
	defer close(l.s.done)
	quit := l.s.quit
	for {
		var e event
		select {
		case e = <-l.s.reqs:
		case e = <-l.s.evs:
		case <-l.leaderExited:
			l.leaderExited = nil
			l.onLeaderExit(l.watch)
			continue
		case <-l.treeDone:
			l.treeDone = nil
			inst := l.watch
			st, _ := inst.tree.ExitState()
			ei := exitInfo(st, l.s.deps.Clock.Now(), false)
			ei.Code, ei.Signaled = -1, false
			ei.Description = fmt.Sprintf("its whole tree ended (the launcher, pid %d, had ended earlier: %s)", inst.tree.PID(), describeState(st))
			if !l.m.state.Running() {
				ei.Description = "its tree was stopped"
			}
			e = event{kind: EvExited, inst: inst.id, exit: ei}
		case <-quit:
			quit = nil
			l.closing = true
			l.m.shutdown = true // what the loop still takes is a stop
			for _, w := range l.m.waiters {
				w.ch <- reply{status: l.status(), err: newErr(l.m.name, CodeShuttingDown, "the service was closed before it answered")}
			}
			l.m.waiters = nil
			if !l.m.state.HasTree() {
				l.closeAll()
				return
			}
			continue
		}
		l.handle(e)
		if l.closing && !l.m.state.HasTree() {
			l.closeAll()
			return
		}
	}
}

func (l *loop) closeAll() {
	if l.timer != nil {
		l.timer.Stop()
	}
	for _, c := range l.probes {
		c()
	}
	for _, c := range l.watchers {
		c()
	}
}

// handle runs one event and everything it leads to synchronously (a spawn
// yields its result at once), then publishes the snapshot.
func (l *loop) handle(e event) {
	switch e.kind {
	case evConfigure:
		l.m.cfg = e.cfg
		e.reply <- reply{status: l.status()}
		l.publish()
		return
	case evForget:
		keep := l.m.waiters[:0]
		for _, w := range l.m.waiters {
			if w.ch != e.reply {
				keep = append(keep, w)
			}
		}
		l.m.waiters = keep
		return
	}
	queue := []event{e}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		e.at, e.rand = l.s.deps.Clock.Now(), l.s.deps.Jitter()
		for _, fx := range l.m.step(e) {
			if next, ok := l.exec(fx); ok {
				queue = append(queue, next)
			}
		}
	}
	l.rewatch()
	l.publish()
	for _, o := range l.outbox {
		o.ch <- o.rep
	}
	l.outbox = l.outbox[:0]
}

// rewatch points the loop's selects at the current instance.
func (l *loop) rewatch() {
	inst := l.m.inst
	if inst == l.watch {
		return
	}
	l.watch, l.leaderExited, l.treeDone = inst, nil, nil
	if inst == nil {
		return
	}
	l.leaderExited = inst.tree.Exited()
	if inst.cfg.Lifetime == config.LifetimeTree {
		l.treeDone = inst.tree.Done()
	}
}

// exec runs one effect; a synchronous one returns the event it results in.
func (l *loop) exec(fx effect) (event, bool) {
	d := l.s.deps
	switch fx := fx.(type) {
	case fxJournal:
		ev := journal.Event{Kind: fx.kind, Service: l.m.name, Message: fx.msg, Fields: fx.fields}
		if fx.inst != nil {
			ev.Instance, ev.PID = fx.inst.id, fx.inst.tree.PID()
		}
		d.Bus.Emit(ev)
		d.Log.Info(fx.msg, "kind", string(fx.kind))
	case fxReply:
		l.outbox = append(l.outbox, outgoing{fx.ch, reply{status: l.status(), err: fx.err}})
	case fxBug:
		d.Log.Error(fx.msg)
	case fxTimer:
		if l.timer != nil {
			l.timer.Stop()
		}
		gen := fx.gen
		l.timer = d.Clock.AfterFunc(fx.d, func() { l.s.post(event{kind: EvTimer, gen: gen}) })
	case fxCancelTimer:
		if l.timer != nil {
			l.timer.Stop()
			l.timer = nil
		}
	case fxPreflight:
		cfg, gen := l.m.cfg, fx.gen
		go func() { l.s.post(l.preflight(cfg, gen)) }()
	case fxSpawn:
		return l.spawn(fx), true
	case fxWatchReady:
		l.watchReady(fx.inst)
	case fxWatchHealth:
		l.watchHealth(fx.inst)
	case fxStopWatch:
		cancelIn(l.probes, fx.inst.id)
	case fxStopTree:
		cancelIn(l.watchers, fx.inst.id)
		l.stopTree(fx.inst, fx.kill, fx.inst.main)
	case fxFreeze:
		tr := fx.inst.tree
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := tr.Freeze(ctx); err != nil {
				d.Log.Warn("freeze", "err", err)
			}
		}()
	case fxThaw:
		fx.inst.tree.Thaw()
	case fxFollowMain:
		l.followMain(fx.inst, fx.pid)
	case fxRelease:
		d.Track(l.m.name, fx.inst.id, false)
		if fx.inst.pids != nil {
			fx.inst.pids.Remove()
		}
		cancelIn(l.probes, fx.inst.id)
		cancelIn(l.watchers, fx.inst.id)
	default:
		panic(fmt.Sprintf("service: unknown effect %T", fx))
	}
	return event{}, false
}

func cancelIn(m map[string]context.CancelFunc, id string) {
	if c := m[id]; c != nil {
		c()
		delete(m, id)
	}
}

// ctxIn returns a context that ends with the others of id in m.
func ctxIn(m map[string]context.CancelFunc, id string) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	if prev := m[id]; prev != nil {
		c := cancel
		cancel = func() { c(); prev() }
	}
	m[id] = cancel
	return ctx
}

func (l *loop) publish() {
	snap := &snapshot{status: l.status(), ready: l.m.cfg.Ready, pidfile: l.m.cfg.PIDFile}
	if l.m.inst != nil {
		snap.tree = l.m.inst.tree
	}
	l.s.snap.Store(snap)
}

func (l *loop) status() Status {
	m := l.m
	st := Status{
		Name: m.name, State: m.state, Reason: m.reason, Since: m.since,
		Restarts: m.restarts, Starts: m.starts, LastExit: m.lastExit, LastStop: m.lastStop,
		NextStart: m.nextStart, ExternalPIDs: m.external,
	}
	if m.lastExit != nil {
		// A copy: actions amend the machine's (Requested), while readers
		// hold published snapshots.
		le := *m.lastExit
		st.LastExit = &le
	}
	if m.cause != nil {
		st.Code = m.cause.Code
	}
	if lim := m.cfg.Limits; !lim.IsZero() {
		st.Limits = &LimitsView{Processes: lim.Processes, Memory: lim.Memory, ForkRate: lim.ForkRate, GPUMemory: lim.GPUMemory, OnLimit: string(m.cfg.OnLimit)}
	}
	if inst := m.inst; inst != nil {
		st.Frozen = m.state == Frozen
		st.KernelLimit = inst.pids != nil
		st.Instance = inst.id
		st.Leader = inst.tree.PID()
		st.PID = st.Leader
		if inst.main != 0 {
			st.PID, st.MainFrom = inst.main, inst.mainWhy
		}
		st.PreviousPID = inst.prevMain
		st.Mechanism = string(inst.tree.Mechanism())
		st.Profile = inst.profile
		st.Args, st.EnvKeys = slices.Clone(inst.args), envKeys(inst.vars)
		st.StartedAt = inst.started
	}
	return st
}
