package service

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/logs"
	"github.com/corral-sh/corral/internal/pidslimit"
	"github.com/corral-sh/corral/internal/probe"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/restart"
	"github.com/corral-sh/corral/proctree"
)

// Clock is the time source; tests may replace it.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) interface{ Stop() bool }
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) interface{ Stop() bool } {
	return time.AfterFunc(d, f)
}

// Deps are what a service needs from the supervisor around it.
type Deps struct {
	Containment  proctree.Containment
	CgroupParent string
	Logs         *logs.Sink
	Bus          *journal.Bus
	Log          *slog.Logger
	Clock        Clock
	Jitter       func() float64
	// OwnerOf names the service of ours whose tree holds pid, or "".
	OwnerOf func(pid int) string
	// Track is told every instance id when it is spawned (alive) and when
	// its tree is verified empty. It must not call into the service.
	Track func(service, instance string, alive bool)
	// KernelLimits puts each tree with a process limit into a kernel pids
	// group at the gate (where one is available).
	KernelLimits bool
	// Reclaim stops the instance pid belongs to if it is a leftover of an
	// earlier corral run (its marker names an instance in the journal that
	// no service runs now) and reports whether it did. Nil: never.
	Reclaim func(pid int) bool
}

// ErrBadRequest marks a request refused for its input; nothing was done.
var ErrBadRequest = errors.New("service: bad request")

// ErrShutdown is returned for starts after Shutdown.
var ErrShutdown = errors.New("service: corral is shutting down")

// ExitInfo describes how the last instance ended.
type ExitInfo struct {
	At          time.Time `json:"at"`
	Code        int       `json:"code"`
	Signaled    bool      `json:"signaled,omitempty"`
	Description string    `json:"description"`
	Requested   bool      `json:"requested,omitempty"`
}

// Status is a snapshot of a service.
type Status struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	Since     time.Time `json:"since"`
	Instance  string    `json:"instance,omitempty"`
	PID       int       `json:"pid,omitempty"`
	Mechanism string    `json:"mechanism,omitempty"`
	Profile   string    `json:"profile,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	Restarts  int       `json:"restarts"`
	Starts    int       `json:"starts"`
	NextStart time.Time `json:"next_start,omitzero"`
	LastExit  *ExitInfo `json:"last_exit,omitempty"`
	// ExternalPIDs are the processes serving an external service.
	ExternalPIDs []int `json:"external_pids,omitempty"`
	// LastStop is the report of the last stop of a tree.
	LastStop *proctree.StopReport `json:"last_stop,omitempty"`
	// Limits in force and what a breach does; Frozen: the watchdog froze it.
	Limits *LimitsView `json:"limits,omitempty"`
	Frozen bool        `json:"frozen,omitempty"`
	// KernelLimit: the process limit is enforced by a kernel pids group.
	KernelLimit bool `json:"kernel_limit,omitempty"`
}

// LimitsView is a service's limits as the API shows them.
type LimitsView struct {
	Processes int     `json:"processes,omitempty"`
	Memory    int64   `json:"memory,omitempty"`
	ForkRate  float64 `json:"fork_rate,omitempty"`
	OnLimit   string  `json:"on_limit"`
}

type reqKind int

const (
	reqStart reqKind = iota
	reqStop
	reqRestart
	reqStatus
	reqConfigure
	reqShutdown
	reqTree
	reqLimit
)

type request struct {
	kind    reqKind
	profile string
	wait    waitFor
	cfg     *config.Service
	reply   chan reply
	// reqLimit: the action, and why
	action config.OnLimit
	reason string
}

type waitFor int

const (
	waitRunning waitFor = iota // until an instance runs (or is external)
	waitReady                  // until ready (or external)
	waitStopped                // until no instance is left
)

type reply struct {
	status Status
	tree   *proctree.Tree
	err    error
}

// Service runs one service. Its methods are safe for concurrent use.
type Service struct {
	name string
	deps Deps
	reqs chan request
	evs  chan event
	done chan struct{} // closed when the owner goroutine has returned
}

type evKind int

const (
	evReadyOK evKind = iota
	evReadyFail
	evExited
	evStopped
	evHealth
	evTimer
)

type event struct {
	kind   evKind
	inst   string // instance the event is about; stale ones are dropped
	err    error
	report *proctree.StopReport // evStopped only
	ok     bool
	seq    int // timer generation
}

// instance is one run of the service: a tree and its helpers.
type instance struct {
	id        string
	tree      *proctree.Tree
	profile   string
	started   time.Time
	cancel    context.CancelFunc // ends probes
	requested bool               // the stop was asked for (not a failure)
	unhealthy bool
	notReady  bool
	healthBad int
	// ended is closed when the instance ends on its own; nil once seen.
	ended <-chan struct{}
	pids  *pidslimit.Group // kernel process limit, or nil
	// killNow: the tree is frozen by the watchdog; stop it by killing.
	killNow bool
	// stopReason is why a requested stop began; the stopped state keeps it.
	stopReason string
	frozen     bool
}

type waiter struct {
	want waitFor
	ch   chan reply
}

// loop state: owned by the goroutine in run, touched nowhere else.
type loop struct {
	s        *Service
	cfg      *config.Service
	state    State
	reason   string
	since    time.Time
	inst     *instance
	hist     restart.History
	restarts int
	starts   int
	lastExit *ExitInfo
	lastStop *proctree.StopReport
	external []int
	// pending is a start queued behind a requested stop (restart, or a
	// start while stopping).
	pending *request
	// restartProfile is the profile a policy restart (backoff, re-arm) uses.
	restartProfile string
	waiters        []waiter
	timer          interface{ Stop() bool }
	timerSeq       int
	nextStart      time.Time
	shutdown       bool
	manualNext     bool // the next start counts as manual (bypasses the start limit)
}

// New starts the owner goroutine of a service. It does not start the
// service itself.
func New(cfg *config.Service, deps Deps) *Service {
	if deps.Clock == nil {
		deps.Clock = realClock{}
	}
	if deps.Jitter == nil {
		deps.Jitter = rand.Float64
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Logs == nil {
		deps.Logs = logs.NewSink(logs.Options{})
	}
	if deps.Bus == nil {
		deps.Bus = journal.NewBus(100, nil)
	}
	if deps.OwnerOf == nil {
		deps.OwnerOf = func(int) string { return "" }
	}
	if deps.Track == nil {
		deps.Track = func(string, string, bool) {}
	}
	s := &Service{name: cfg.Name, deps: deps, reqs: make(chan request), evs: make(chan event, 4), done: make(chan struct{})}
	l := &loop{s: s, cfg: cfg, state: Stopped, since: deps.Clock.Now()}
	go l.run()
	return s
}

// Name returns the service's name.
func (s *Service) Name() string { return s.name }

// Logs returns the service's output sink.
func (s *Service) Logs() *logs.Sink { return s.deps.Logs }

func (s *Service) call(ctx context.Context, r request) (reply, error) {
	r.reply = make(chan reply, 1)
	select {
	case s.reqs <- r:
	case <-s.done:
		return reply{}, ErrShutdown
	case <-ctx.Done():
		return reply{}, ctx.Err()
	}
	select {
	case rep := <-r.reply:
		return rep, rep.err
	case <-ctx.Done():
		return reply{}, fmt.Errorf("service %s: %w", s.name, ctx.Err())
	}
}

func readyIf(wait bool) waitFor {
	if wait {
		return waitReady
	}
	return waitRunning
}

// Start starts the service if it is not running and returns once an
// instance runs, or once it is ready when wait is set.
func (s *Service) Start(ctx context.Context, profile string, wait bool) (Status, error) {
	rep, err := s.call(ctx, request{kind: reqStart, profile: profile, wait: readyIf(wait)})
	return rep.status, err
}

// Ensure starts the service if needed and returns once it is ready.
func (s *Service) Ensure(ctx context.Context) (Status, error) {
	rep, err := s.call(ctx, request{kind: reqStart, wait: waitReady})
	return rep.status, err
}

// Restart stops the service completely, then starts it (with profile).
func (s *Service) Restart(ctx context.Context, profile string, wait bool) (Status, error) {
	rep, err := s.call(ctx, request{kind: reqRestart, profile: profile, wait: readyIf(wait)})
	return rep.status, err
}

// Stop stops the service and returns once its tree is verified empty.
func (s *Service) Stop(ctx context.Context) (Status, error) {
	rep, err := s.call(ctx, request{kind: reqStop, wait: waitStopped})
	return rep.status, err
}

// Shutdown stops the service for good: later starts fail with ErrShutdown.
func (s *Service) Shutdown(ctx context.Context) (Status, error) {
	rep, err := s.call(ctx, request{kind: reqShutdown, wait: waitStopped})
	return rep.status, err
}

// Status returns a snapshot.
func (s *Service) Status() Status {
	rep, _ := s.call(context.Background(), request{kind: reqStatus})
	return rep.status
}

// Tree returns the current instance's tree, or nil.
func (s *Service) Tree() *proctree.Tree {
	rep, _ := s.call(context.Background(), request{kind: reqTree})
	return rep.tree
}

// OnLimit applies the configured action for a limit breach (the watchdog
// has already frozen a growing tree).
func (s *Service) OnLimit(ctx context.Context, action config.OnLimit, reason string) (Status, error) {
	rep, err := s.call(ctx, request{kind: reqLimit, action: action, reason: reason})
	return rep.status, err
}

// Configure replaces the configuration; it applies from the next start.
func (s *Service) Configure(cfg *config.Service) {
	s.call(context.Background(), request{kind: reqConfigure, cfg: cfg})
}

// Close ends the owner goroutine. The service must be stopped first.
func (s *Service) Close() {
	select {
	case <-s.done:
	default:
		s.evs <- event{kind: -1}
		<-s.done
	}
}

func newInstanceID() string {
	var b [12]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// post hands an event to the owner goroutine, or drops it once the service
// is closed, so helper goroutines never block forever.
func (s *Service) post(e event) {
	select {
	case s.evs <- e:
	case <-s.done:
	}
}

func (l *loop) run() {
	defer close(l.s.done)
	for {
		// The one instance's end is watched here, not by a goroutine per
		// instance: a daemon with a hundred services saves a hundred stacks.
		var ended <-chan struct{}
		if l.inst != nil {
			ended = l.inst.ended
		}
		select {
		case r := <-l.s.reqs:
			l.request(r)
		case e := <-l.s.evs:
			if e.kind == -1 {
				return
			}
			l.event(e)
		case <-ended:
			l.inst.ended = nil
			l.event(event{kind: evExited, inst: l.inst.id})
		}
	}
}

func (l *loop) status() Status {
	st := Status{
		Name: l.cfg.Name, State: l.state, Reason: l.reason, Since: l.since,
		Restarts: l.restarts, Starts: l.starts, LastExit: l.lastExit, LastStop: l.lastStop,
		NextStart: l.nextStart, ExternalPIDs: l.external,
	}
	if lim := l.cfg.Limits; !lim.IsZero() {
		st.Limits = &LimitsView{Processes: lim.Processes, Memory: lim.Memory, ForkRate: lim.ForkRate, OnLimit: string(l.cfg.OnLimit)}
	}
	if l.inst != nil {
		st.Frozen = l.inst.frozen
		st.KernelLimit = l.inst.pids != nil
		st.Instance = l.inst.id
		st.PID = l.inst.tree.PID()
		st.Mechanism = string(l.inst.tree.Mechanism())
		st.Profile = l.inst.profile
		st.StartedAt = l.inst.started
	}
	return st
}

func (l *loop) emit(kind journal.Kind, msg string, fields map[string]string) {
	e := journal.Event{Kind: kind, Service: l.cfg.Name, Message: msg, Fields: fields}
	if l.inst != nil {
		e.Instance, e.PID = l.inst.id, l.inst.tree.PID()
	}
	l.s.deps.Bus.Emit(e)
	l.s.deps.Log.Info(msg, "kind", string(kind))
}

// to moves the state machine; reason explains the new state.
func (l *loop) to(e Event, reason string) {
	next, err := Next(l.state, e)
	if err != nil {
		l.s.deps.Log.Error("service: impossible transition", "service", l.cfg.Name, "err", err)
		return
	}
	if next != l.state {
		l.since = l.s.deps.Clock.Now()
		l.emit(journal.State, fmt.Sprintf("%s → %s (%s)", l.state, next, e), map[string]string{"from": string(l.state), "to": string(next)})
	}
	l.state, l.reason = next, reason
	l.settleWaiters()
}

// settleWaiters answers every waiter whose wish the current state decides.
func (l *loop) settleWaiters() {
	keep := l.waiters[:0]
	for _, w := range l.waiters {
		var err error
		done := true
		switch {
		case w.want == waitStopped:
			done = !l.state.Running() && l.state != Stopping
		case l.state == External:
		case w.want == waitRunning && l.state.Running():
		case w.want == waitReady && (l.state == Ready || l.state == Unhealthy):
		case l.state == Failed:
			err = fmt.Errorf("service %s failed: %s", l.cfg.Name, l.reason)
		case l.state == Stopped && l.pending == nil:
			err = fmt.Errorf("service %s stopped: %s", l.cfg.Name, l.reason)
		default:
			done = false // starting, stopping on the way to a restart, backoff
		}
		if done {
			w.ch <- reply{status: l.status(), err: err}
		} else {
			keep = append(keep, w)
		}
	}
	l.waiters = keep
}

func (l *loop) wait(r request) {
	l.waiters = append(l.waiters, waiter{want: r.wait, ch: r.reply})
	l.settleWaiters()
}

func (l *loop) request(r request) {
	switch r.kind {
	case reqStatus:
		r.reply <- reply{status: l.status()}
	case reqTree:
		var t *proctree.Tree
		if l.inst != nil {
			t = l.inst.tree
		}
		r.reply <- reply{tree: t, status: l.status()}
	case reqConfigure:
		l.cfg = r.cfg
		r.reply <- reply{status: l.status()}
	case reqLimit:
		l.onLimit(r)
	case reqStart, reqRestart:
		if l.shutdown {
			r.reply <- reply{status: l.status(), err: ErrShutdown}
			return
		}
		// Bad input changes nothing: an unknown profile is refused before
		// anything is stopped.
		if _, err := l.cfg.CommandFor(r.profile); err != nil {
			r.reply <- reply{status: l.status(), err: fmt.Errorf("%w: %v", ErrBadRequest, err)}
			return
		}
		if r.kind == reqStart {
			l.startRequest(r)
			return
		}
		if l.state.Running() || l.state == Stopping {
			l.pending = &request{kind: reqStart, profile: r.profile}
			l.manualNext = true
			// Stop first: a waiter added while the old instance runs would
			// be answered by it.
			l.beginStop(true, "restart requested")
			l.wait(r)
			return
		}
		if l.state == External {
			r.reply <- reply{status: l.status(), err: fmt.Errorf("service %s is served by a process corral did not start (pids %v); corral will not restart it", l.cfg.Name, l.external)}
			return
		}
		l.startRequest(r)
	case reqStop, reqShutdown:
		if r.kind == reqShutdown {
			l.shutdown = true
			l.pending = nil
		}
		l.pending = nil
		switch {
		case l.state.Running() || l.state == Stopping || l.inst != nil:
			if l.inst != nil && l.inst.cancel == nil && l.state != Stopping {
				l.inst.cancel = func() {} // a failed stop: try again
			}
			l.beginStop(true, "stop requested")
			l.wait(r)
		default:
			l.cancelTimer()
			l.external = nil
			l.to(EvStop, "stop requested")
			r.reply <- reply{status: l.status()}
		}
	}
}

func (l *loop) onLimit(r request) {
	inst := l.inst
	if inst == nil || !l.state.Running() {
		r.reply <- reply{status: l.status()}
		return
	}
	switch r.action {
	case config.LimitFreeze:
		if !inst.frozen {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			inst.tree.Freeze(ctx)
			cancel()
		}
		inst.frozen = true
		l.reason = "frozen by the watchdog: " + r.reason
		r.reply <- reply{status: l.status()}
	case config.LimitStop:
		inst.killNow = true
		l.beginStop(true, "stopped by the watchdog: "+r.reason)
		l.wait(request{wait: waitStopped, reply: r.reply})
	case config.LimitRestart:
		inst.killNow = true
		l.pending = &request{kind: reqStart, profile: inst.profile}
		l.manualNext = true
		l.beginStop(true, "restarting on the watchdog's word: "+r.reason)
		l.wait(request{wait: waitRunning, reply: r.reply})
	default: // warn: a growing tree was frozen to look at it; let it run
		if inst.frozen {
			inst.tree.Thaw()
			inst.frozen = false
		}
		r.reply <- reply{status: l.status()}
	}
}

func (l *loop) startRequest(r request) {
	switch {
	case l.state == Stopping:
		// Queued: the old tree goes first, completely.
		if l.pending == nil {
			l.pending = &request{kind: reqStart, profile: r.profile}
		}
		l.manualNext = true
		l.wait(r)
	case l.state.Running():
		l.wait(r) // coalesced with the running instance
	case l.state == External:
		// Still there? Otherwise forget it and start our own.
		if err := probe.Check(context.Background(), l.cfg.Ready, externalProbe, probe.Options{Containment: l.s.deps.Containment}); err == nil {
			r.reply <- reply{status: l.status()}
			return
		}
		l.external = nil
		l.to(EvStop, "the external server went away")
		l.spawn(r.profile, true)
		l.wait(r)
	case l.inst != nil:
		// A previous stop could not empty the tree; starting another
		// instance beside it would be exactly the leak corral prevents.
		r.reply <- reply{status: l.status(), err: fmt.Errorf("service %s: the previous instance's tree is not empty (%s); stop it again or see corral status", l.cfg.Name, l.reason)}
	default:
		l.cancelTimer()
		l.spawn(r.profile, true)
		l.wait(r) // after the spawn: the state it leaves decides the wait
	}
}

func (l *loop) cancelTimer() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.timerSeq++
	l.nextStart = time.Time{}
}

func (l *loop) after(d time.Duration) {
	l.cancelTimer()
	seq := l.timerSeq
	l.nextStart = l.s.deps.Clock.Now().Add(d)
	l.timer = l.s.deps.Clock.AfterFunc(d, func() { l.s.post(event{kind: evTimer, seq: seq}) })
}

// externalProbe bounds the check of a server corral did not start. It runs
// on the owner goroutine (requests wait meanwhile); a healthy local server
// answers in milliseconds.
const externalProbe = 500 * time.Millisecond

// preflight checks the ports the service's probes name. A port held by a
// process corral does not own is never touched: if that server answers the
// ready probe it is adopted as external, otherwise the start is refused with
// the holder's pid and command line.
func (l *loop) preflight() (external []int, err error) {
	for _, port := range l.cfg.Ports() {
		pids, listening, perr := procinfo.PortHolders(port)
		// A listening socket that no process holds is one whose owner just
		// exited: the kernel finishes closing it a moment after the fd
		// table is gone (right after our previous instance's stop, say).
		for wait := 5 * time.Millisecond; perr == nil && listening && len(pids) == 0 && wait < time.Second; wait *= 2 {
			time.Sleep(wait)
			pids, listening, perr = procinfo.PortHolders(port)
		}
		if perr != nil && !errors.Is(perr, errors.ErrUnsupported) {
			return nil, fmt.Errorf("checking port %d: %w", port, perr)
		}
		if !listening {
			continue
		}
		var desc []string
		reclaimed := false
		for _, pid := range pids {
			if owner := l.s.deps.OwnerOf(pid); owner != "" {
				return nil, fmt.Errorf("port %d is held by pid %d of service %s", port, pid, owner)
			}
			if l.s.deps.Reclaim != nil && l.s.deps.Reclaim(pid) {
				reclaimed = true
				continue
			}
			argv, _ := procinfo.Cmdline(pid)
			desc = append(desc, fmt.Sprintf("pid %d (%s)", pid, strings.Join(argv, " ")))
		}
		if reclaimed {
			if pids, listening, _ = procinfo.PortHolders(port); !listening {
				continue // an earlier run's leftover held it; it is gone now
			}
			desc = desc[:0]
			for _, pid := range pids {
				argv, _ := procinfo.Cmdline(pid)
				desc = append(desc, fmt.Sprintf("pid %d (%s)", pid, strings.Join(argv, " ")))
			}
		}
		if len(desc) == 0 {
			desc = append(desc, "a process corral cannot inspect (another user's?)")
		}
		if !l.cfg.Ready.IsZero() && (l.cfg.Ready.HTTP != "" || l.cfg.Ready.TCP != "" || len(l.cfg.Ready.Exec) > 0) {
			if probe.Check(context.Background(), l.cfg.Ready, externalProbe, probe.Options{Containment: l.s.deps.Containment}) == nil {
				return pids, nil
			}
		}
		return nil, fmt.Errorf("port %d is held by %s, which corral did not start and will not stop; stop it or change the service's port", port, strings.Join(desc, ", "))
	}
	return nil, nil
}

func (l *loop) spawn(profile string, manual bool) {
	now := l.s.deps.Clock.Now()
	manual = manual || l.manualNext
	l.manualNext = false
	ext, err := l.preflight()
	if err == nil && ext != nil {
		l.external = ext
		l.emit(journal.External, fmt.Sprintf("already served by pids %v, not started by corral: adopted as external, never stopped", ext), nil)
		l.to(EvExternal, "served by a process corral did not start")
		return
	}
	var argv []string
	if err == nil {
		argv, err = l.cfg.CommandFor(profile)
	}
	if err == nil && l.cfg.Dir != "" {
		// exec reports a missing working directory as a missing program.
		if st, serr := os.Stat(l.cfg.Dir); serr != nil || !st.IsDir() {
			err = fmt.Errorf("working directory %s does not exist or is not a directory (dir in the configuration)", l.cfg.Dir)
		}
	}
	var tr *proctree.Tree
	var pg *pidslimit.Group
	id := newInstanceID()
	// The cut between earlier output and this instance's, taken before the
	// program can run: a ready line printed at once must count.
	var since uint64
	if tail := l.s.deps.Logs.Tail(1); len(tail) > 0 {
		since = tail[0].Seq
	}
	if err == nil && l.s.deps.KernelLimits && l.cfg.Limits.Processes > 0 {
		// Where the kernel can count the tree, it enforces the limit itself:
		// a fork past it fails. Otherwise accounting alone guards it.
		if g, perr := pidslimit.New(id, l.cfg.Limits.Processes); perr == nil {
			pg = g
		} else {
			l.s.deps.Log.Debug("no kernel process limit", "err", perr)
		}
	}
	if err == nil {
		// Known before it exists: no process of ours is ever unaccounted for.
		l.s.deps.Track(l.cfg.Name, id, true)
		cmd := command(argv, l.cfg.Shell)
		cmd.Dir = l.cfg.Dir
		cmd.Env = append(os.Environ(), l.cfg.Env...)
		if !l.cfg.StdinNull {
			cmd.Stdin = os.Stdin
		}
		cmd.Stdout = l.s.deps.Logs.Writer("stdout")
		cmd.Stderr = l.s.deps.Logs.Writer("stderr")
		bus, name, line := l.s.deps.Bus, l.cfg.Name, strings.Join(argv, " ")
		tr, err = proctree.Start(cmd, proctree.Options{
			Containment: l.s.deps.Containment, CgroupParent: l.s.deps.CgroupParent,
			Service: l.cfg.Name, Instance: id, Logger: l.s.deps.Log,
			// On disk before the program's first instruction: a crash of
			// corral at any later point leaves a record to reap from.
			Gate: func(g proctree.Gated) error {
				if pg != nil {
					if err := pg.Add(g.PID); err != nil {
						return err
					}
				}
				err := bus.EmitSync(journal.Event{
					Kind: journal.Spawn, Service: name, Instance: g.Instance, PID: g.PID,
					Start: g.StartTicks, Boot: g.Boot, Cgroup: g.Container, Cmdline: argv,
					Message: fmt.Sprintf("started %s (pid %d, %s)", line, g.PID, g.Mechanism),
					Fields:  map[string]string{"profile": profile},
				})
				if err != nil {
					return fmt.Errorf("cannot journal the spawn, so it was not started (corral never runs what it has not recorded): %w", err)
				}
				return nil
			},
		})
		if err != nil {
			l.s.deps.Track(l.cfg.Name, id, false)
		}
	}
	if err != nil {
		if pg != nil {
			pg.Remove()
		}
		l.emit(journal.Refused, "start refused: "+err.Error(), nil)
		l.to(EvRefused, err.Error())
		return
	}
	l.hist = l.cfg.Restart.Started(l.hist, now, manual)
	l.starts++
	ctx, cancel := context.WithCancel(context.Background())
	inst := &instance{id: tr.ID(), tree: tr, profile: profile, started: now, cancel: cancel, pids: pg}
	l.inst = inst
	l.to(EvStart, "starting")

	evs := l.s.deps.Containment
	// An instance ends with its leader, or with its whole tree for
	// launchers that exit after starting the real server; run selects on it.
	inst.ended = tr.Exited()
	if l.cfg.Lifetime == config.LifetimeTree {
		inst.ended = tr.Done()
	}
	ready := l.cfg.Ready
	go func() {
		if ready.IsZero() {
			l.s.post(event{kind: evReadyOK, inst: inst.id})
			return
		}
		err := probe.WaitReady(ctx, ready, l.s.deps.Logs, since, probe.Options{Containment: evs})
		if ctx.Err() != nil {
			return // the instance ended first
		}
		k := evReadyOK
		if err != nil {
			k = evReadyFail
		}
		l.s.post(event{kind: k, inst: inst.id, err: err})
	}()
}

func (l *loop) startHealth(inst *instance) {
	h := l.cfg.Health
	if h.IsZero() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	prev := inst.cancel
	inst.cancel = func() { cancel(); prev() }
	go func() {
		t := time.NewTicker(h.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := probe.Check(ctx, h.Probe, h.Timeout, probe.Options{Containment: l.s.deps.Containment})
			if ctx.Err() != nil {
				return
			}
			l.s.post(event{kind: evHealth, inst: inst.id, ok: err == nil, err: err})
		}
	}()
}

func (l *loop) event(e event) {
	if e.kind == evTimer {
		if e.seq != l.timerSeq {
			return // cancelled
		}
		l.timer, l.nextStart = nil, time.Time{}
		if l.state == Backoff || l.state == Failed {
			if l.state == Backoff {
				l.restarts++
			}
			l.spawn(l.restartProfile, false)
		}
		return
	}
	if l.inst == nil || e.inst != l.inst.id {
		return // about an instance that is already gone
	}
	inst := l.inst
	switch e.kind {
	case evReadyOK:
		if l.state != Starting {
			return
		}
		l.emit(journal.Ready, "ready", nil)
		l.to(EvReady, "ready")
		l.startHealth(inst)
	case evReadyFail:
		if l.state != Starting {
			return
		}
		inst.notReady = true
		l.emit(journal.Health, "not ready: "+e.err.Error(), nil)
		l.to(EvNotReady, e.err.Error())
		l.beginStop(false, e.err.Error())
	case evHealth:
		if l.state != Ready && l.state != Unhealthy {
			return
		}
		if e.ok {
			inst.healthBad = 0
			if l.state == Unhealthy {
				l.emit(journal.Health, "healthy again", nil)
			}
			l.to(EvHealthOK, "ready")
			return
		}
		inst.healthBad++
		msg := fmt.Sprintf("health check failed (%d of %d): %v", inst.healthBad, l.cfg.Health.Failures, e.err)
		l.emit(journal.Health, msg, nil)
		if inst.healthBad >= l.cfg.Health.Failures {
			inst.unhealthy = true
			l.to(EvHealthDown, msg)
			l.beginStop(false, msg)
			return
		}
		l.to(EvHealthFail, msg)
	case evExited:
		st, _ := inst.tree.ExitState()
		l.lastExit = exitInfo(st, l.s.deps.Clock.Now(), inst.requested)
		if l.cfg.Lifetime == config.LifetimeTree {
			l.lastExit.Description = "its whole tree ended"
		}
		if l.state != Stopping {
			l.emit(journal.Exit, "instance ended: "+l.lastExit.Description,
				map[string]string{"code": fmt.Sprint(l.lastExit.Code), "signaled": fmt.Sprint(l.lastExit.Signaled)})
			l.to(EvExited, l.lastExit.Description)
			// Whatever else is in the container (workers of a crashed
			// server, a daemon) goes before anything starts again.
			l.beginStop(false, l.lastExit.Description)
		}
	case evStopped:
		l.finishStop(e)
	}
}

func exitInfo(st *os.ProcessState, at time.Time, requested bool) *ExitInfo {
	ei := &ExitInfo{At: at, Requested: requested, Code: -1, Description: "ended"}
	if st == nil {
		return ei
	}
	ei.Code = st.ExitCode()
	if ws, ok := st.Sys().(interface{ Signaled() bool }); ok && ws.Signaled() {
		ei.Signaled = true
	}
	ei.Description = st.String()
	return ei
}

// beginStop stops the current instance's tree in the background. requested
// marks a stop that was asked for, which the restart policy never counts.
func (l *loop) beginStop(requested bool, reason string) {
	inst := l.inst
	if inst == nil {
		return
	}
	inst.requested = inst.requested || requested
	if requested && inst.stopReason == "" {
		inst.stopReason = reason
	}
	switch l.state {
	case Stopping:
	case Failed: // a tree an incomplete stop left behind
		l.to(EvStopAgain, reason)
	default:
		l.to(EvStop, reason)
	}
	if inst.cancel == nil {
		return // a stop is already under way
	}
	inst.cancel()
	inst.cancel = nil
	cfg := l.cfg
	leaderGone := false
	select {
	case <-inst.tree.Exited():
		leaderGone = true
	default:
	}
	killNow := inst.killNow
	go func() {
		if killNow {
			// Frozen by the watchdog: it can act on no signal; kill it.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			rep, err := inst.tree.Stop(ctx, syscall.SIGKILL, 0)
			cancel()
			l.s.post(event{kind: evStopped, inst: inst.id, report: &rep, err: err})
			return
		}
		rep, err := stopTree(inst.tree, cfg, !leaderGone)
		l.s.post(event{kind: evStopped, inst: inst.id, report: &rep, err: err})
	}()
}

// stopTree runs the stop order: the stop hook (when the server is still
// there to hear it), the stop signal to every member, the grace period, a
// kill of the whole container, and a bounded wait until it is empty.
func stopTree(tr *proctree.Tree, cfg *config.Service, hook bool) (proctree.StopReport, error) {
	grace := cfg.Stop.Grace
	if h := cfg.Stop.Hook; hook && h != nil {
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), min(grace, 5*time.Second))
		req, err := http.NewRequestWithContext(ctx, h.Method, h.URL, nil)
		if err == nil {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				select {
				case <-tr.Done():
				case <-time.After(grace / 2):
				}
			}
		}
		cancel()
		select {
		case <-tr.Done():
			return proctree.StopReport{Signal: "hook", Duration: time.Since(began)}, nil
		default:
		}
		grace -= time.Since(began)
		if grace < 0 {
			grace = 0
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace+15*time.Second)
	defer cancel()
	return tr.Stop(ctx, cfg.Stop.Signal, grace)
}

func (l *loop) finishStop(e event) {
	inst := l.inst
	rep := *e.report
	l.lastStop = e.report
	if e.err != nil {
		// The tree is not empty: keep it, report, and refuse to start
		// another instance on top of it.
		l.emit(journal.Failed, "stop incomplete: "+e.err.Error(), nil)
		l.to(EvGiveUp, "stop incomplete: "+e.err.Error())
		return
	}
	if rep.Signalled > 0 {
		l.emit(journal.Signal, fmt.Sprintf("%s to %d members; %d exited on it", rep.Signal, rep.Signalled, rep.Exited),
			map[string]string{"signal": rep.Signal, "members": fmt.Sprint(rep.Signalled), "exited": fmt.Sprint(rep.Exited)})
	}
	if rep.Killed > 0 {
		l.emit(journal.Kill, fmt.Sprintf("killed %d members left after the grace period", rep.Killed),
			map[string]string{"members": fmt.Sprint(rep.Killed)})
	}
	l.emit(journal.Stopped, fmt.Sprintf("tree empty: %d signalled, %d exited, %d killed in %v", rep.Signalled, rep.Exited, rep.Killed, rep.Duration.Round(time.Millisecond)),
		map[string]string{"duration_ms": fmt.Sprint(rep.Duration.Milliseconds())})
	l.s.deps.Track(l.cfg.Name, inst.id, false)
	if inst.pids != nil {
		inst.pids.Remove()
	}
	l.inst = nil
	if l.lastExit == nil || l.lastExit.At.Before(inst.started) {
		st, _ := inst.tree.ExitState()
		l.lastExit = exitInfo(st, l.s.deps.Clock.Now(), inst.requested)
	}
	if inst.requested {
		l.lastExit.Requested = true
		reason := "stopped"
		if inst.stopReason != "" && inst.stopReason != "stop requested" {
			reason = inst.stopReason
		}
		l.to(EvStopped, reason)
		if p := l.pending; p != nil && !l.shutdown {
			l.pending = nil
			l.spawn(p.profile, true)
		}
		return
	}
	ex := restart.Exit{
		At: l.s.deps.Clock.Now(), Uptime: l.s.deps.Clock.Now().Sub(inst.started),
		Code: l.lastExit.Code, Signaled: l.lastExit.Signaled, Unhealthy: inst.unhealthy || inst.notReady,
	}
	if l.cfg.Lifetime == config.LifetimeTree && ex.Code == 0 {
		ex.Code = 1 // a tree that empties on its own was not asked to
	}
	var d restart.Decision
	l.hist, d = l.cfg.Restart.Decide(l.hist, ex, l.s.deps.Jitter)
	switch d.Action {
	case restart.Restart:
		l.pending = nil
		l.restartProfile = inst.profile
		l.emit(journal.Restart, fmt.Sprintf("restarting in %v: %s", d.Delay.Round(time.Millisecond), d.Reason), nil)
		l.to(EvRetry, fmt.Sprintf("restarting in %v after: %s", d.Delay.Round(time.Millisecond), d.Reason))
		l.after(d.Delay)
	case restart.Fail:
		l.pending = nil
		l.restartProfile = inst.profile
		l.emit(journal.Failed, d.Reason, map[string]string{"rearm_at": d.RearmAt.Format(time.RFC3339)})
		l.to(EvGiveUp, d.Reason)
		if !d.RearmAt.IsZero() {
			l.after(d.RearmAt.Sub(l.s.deps.Clock.Now()))
		}
	default:
		l.pending = nil
		l.to(EvStay, d.Reason)
	}
}
