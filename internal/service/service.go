package service

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/logs"
	"github.com/corral-sh/corral/proctree"
)

// Clock is the time source of the lifecycle; tests replace it.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) interface{ Stop() bool }
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) interface{ Stop() bool } {
	return time.AfterFunc(d, f)
}

// sleep waits d on clock, or until ctx ends (false).
func sleep(ctx context.Context, clock Clock, d time.Duration) bool {
	ch := make(chan struct{})
	t := clock.AfterFunc(d, func() { close(ch) })
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		t.Stop()
		return false
	}
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
	// StateKey is written into every member's CORRAL_STATE ("": none).
	StateKey string
	// Leftover says why the service must not start yet: an earlier run's
	// tree of it survived a reap. Asked at every start (it may reap again,
	// so it runs outside the loop). Nil: never.
	Leftover func(service string) error
	// Reclaim stops the instance pid belongs to if it is a leftover of an
	// earlier corral run (its marker names an instance in the journal that
	// no service runs now) and reports whether it did. Nil: never.
	Reclaim func(pid int) bool
	// ObserveProbe, if set, is told of every check of a readiness
	// ("ready") or liveness ("health") probe: how long it took and how it
	// ended. Called from the probes' goroutines; it must not block.
	ObserveProbe func(service, probe string, d time.Duration, err error)
}

// ExitInfo describes how the last instance ended.
type ExitInfo struct {
	At          time.Time `json:"at"`
	Code        int       `json:"code"` // -1: not known (a process that is not corral's child)
	Signaled    bool      `json:"signaled,omitempty"`
	Description string    `json:"description"`
	Requested   bool      `json:"requested,omitempty"`
}

// Status is a snapshot of a service.
type Status struct {
	Name   string `json:"name"`
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Code is the machine-readable cause of a failure state.
	Code     Code      `json:"code,omitempty"`
	Since    time.Time `json:"since"`
	Instance string    `json:"instance,omitempty"`
	PID      int       `json:"pid,omitempty"` // the main process
	Leader   int       `json:"leader,omitempty"`
	MainFrom string    `json:"main_from,omitempty"` // how the main process was found when it is not the leader
	// PreviousPID is the main process before the last hand-over.
	PreviousPID int    `json:"previous_pid,omitempty"`
	Mechanism   string `json:"mechanism,omitempty"`
	Profile     string `json:"profile,omitempty"`
	// Args are the instance's own arguments (after the command and the
	// profile's), EnvKeys the names of its own environment variables:
	// values are not shown, they may be secrets.
	Args      []string  `json:"args,omitempty"`
	EnvKeys   []string  `json:"env_keys,omitempty"`
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
	GPUMemory int64   `json:"gpu_memory,omitempty"`
	OnLimit   string  `json:"on_limit"`
}

type reply struct {
	status Status
	err    error
}

// snapshot is what readers see: published by the owner goroutine after
// every step, so Status and Tree never wait for it.
type snapshot struct {
	status  Status
	tree    *proctree.Tree
	ready   config.Probe // what readiness waits for (for timeout messages)
	pidfile string
}

// Service runs one service. Its methods are safe for concurrent use.
type Service struct {
	name string
	deps Deps
	reqs chan event
	evs  chan event
	snap atomic.Pointer[snapshot]
	done chan struct{} // closed when the owner goroutine has returned
	quit chan struct{} // closed by Close

	// probing counts the probe goroutines (an exec probe is a contained
	// tree of its own): Shutdown waits until none runs, so a daemon that
	// exits after it leaves no probe process, or its container, behind.
	probeMu sync.Mutex // guards probing and idle
	probing int
	idle    chan struct{} // closed while probing is 0; nil: not made yet
}

// goProbe runs fn as a probe goroutine, counted for Shutdown.
func (s *Service) goProbe(fn func()) {
	s.probeMu.Lock()
	if s.probing == 0 {
		s.idle = make(chan struct{})
	}
	s.probing++
	s.probeMu.Unlock()
	go func() {
		defer func() {
			s.probeMu.Lock()
			if s.probing--; s.probing == 0 {
				close(s.idle)
			}
			s.probeMu.Unlock()
		}()
		fn()
	}()
}

// probesDone waits, within ctx, until no probe goroutine runs.
func (s *Service) probesDone(ctx context.Context) {
	s.probeMu.Lock()
	idle := s.idle
	if s.probing == 0 {
		idle = nil
	}
	s.probeMu.Unlock()
	if idle == nil {
		return
	}
	select {
	case <-idle:
	case <-ctx.Done():
	}
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
	s := &Service{name: cfg.Name, deps: deps, reqs: make(chan event), evs: make(chan event, 4),
		done: make(chan struct{}), quit: make(chan struct{})}
	l := newLoop(s, cfg)
	l.publish()
	go l.run()
	return s
}

// Name returns the service's name.
func (s *Service) Name() string { return s.name }

// Logs returns the service's output sink.
func (s *Service) Logs() *logs.Sink { return s.deps.Logs }

func (s *Service) call(ctx context.Context, e event) (Status, error) {
	e.reply = make(chan reply, 1)
	select {
	case s.reqs <- e:
	case <-s.done:
		return s.Status(), newErr(s.name, CodeShuttingDown, "corral is shutting down; it starts nothing")
	case <-ctx.Done():
		return s.Status(), s.timeout(ctx, e)
	}
	select {
	case rep := <-e.reply:
		return rep.status, rep.err
	case <-s.done:
		select {
		case rep := <-e.reply: // answered on the way out
			return rep.status, rep.err
		default:
		}
		return s.Status(), newErr(s.name, CodeShuttingDown, "the service was closed before it answered")
	case <-ctx.Done():
		go s.post(event{kind: evForget, reply: e.reply}) // its waiter is no longer wanted
		return s.Status(), s.timeout(ctx, e)
	}
}

// timeout says what a request whose deadline passed was waiting for.
func (s *Service) timeout(ctx context.Context, e event) error {
	snap := s.snap.Load()
	st := snap.status
	what := map[waitFor]string{waitRunning: "running", waitReady: "ready", waitStopped: "stopped", waitNone: "answered"}[e.wait]
	var for_ string
	switch st.State {
	case Starting:
		for_ = "waiting for readiness: " + describeProbe(snap.ready)
		if snap.ready.IsZero() && snap.pidfile != "" {
			for_ = "waiting for its main process to be written to " + snap.pidfile
		}
	case Handover:
		for_ = "waiting for the readiness of the successor it handed over to: " + describeProbe(snap.ready)
	case Checking:
		for_ = "checking its ports"
	case Backoff:
		for_ = fmt.Sprintf("in backoff until %s (%s)", st.NextStart.Format("15:04:05.000"), st.Reason)
	case Stopping, Restarting, Ending:
		for_ = "waiting for its tree to empty"
	default:
		for_ = st.Reason
	}
	return &Error{Code: CodeTimeout, Service: s.name, Err: ctx.Err(),
		Msg: fmt.Sprintf("not %s before the request's deadline: it is %s, %s", what, st.State, for_)}
}

func describeProbe(p config.Probe) string {
	var parts []string
	if p.HTTP != "" {
		parts = append(parts, "http "+p.HTTP)
	}
	if p.TCP != "" {
		parts = append(parts, "tcp "+p.TCP)
	}
	if len(p.Exec) > 0 {
		parts = append(parts, "exec "+strings.Join(p.Exec, " "))
	}
	if p.Log != nil {
		parts = append(parts, fmt.Sprintf("log line /%s/", p.Log))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(" (timeout %v)", p.Timeout)
}

// StartOptions qualify a start, an ensure or a restart.
type StartOptions struct {
	Profile string
	// Args are this instance's own arguments, appended after the command
	// and the profile's arguments; Env is its own environment, layered over
	// the service's env. nil leaves them out: a start accepts a running
	// instance's and starts a stopped service without, a restart keeps the
	// instance's. Non-nil, even empty, they count: a running instance with
	// others is refused (CodeProfileMismatch) unless RestartIfDifferent.
	Args []string
	Env  map[string]string
	// Wait for readiness (start, restart); ensure always waits.
	Wait bool
	// RestartIfDifferent restarts a running instance of another profile,
	// other arguments or another environment instead of refusing the
	// request.
	RestartIfDifferent bool
}

// event makes the request; bad arguments or environment are refused here,
// before the service sees anything.
func (s *Service) event(kind EventKind, o StartOptions) (event, error) {
	e := event{kind: kind, launch: launch{profile: o.Profile}, switchProfile: o.RestartIfDifferent, wait: waitRunning}
	if o.Wait {
		e.wait = waitReady
	}
	if o.Args != nil {
		e.setArgs, e.args = true, slices.Clone(o.Args)
	}
	if o.Env != nil {
		vars, err := config.LaunchEnv(o.Env)
		if err != nil {
			return e, newErr(s.name, CodeBadRequest, "%s", strings.TrimPrefix(err.Error(), "config: "))
		}
		e.setVars, e.vars = true, vars
	}
	return e, nil
}

// Start starts the service if it is not running and returns once an
// instance runs, or once it is ready when wait is set.
func (s *Service) Start(ctx context.Context, profile string, wait bool) (Status, error) {
	return s.StartWith(ctx, StartOptions{Profile: profile, Wait: wait})
}

// StartWith is Start with every option.
func (s *Service) StartWith(ctx context.Context, o StartOptions) (Status, error) {
	e, err := s.event(EvStart, o)
	if err != nil {
		return s.Status(), err
	}
	return s.call(ctx, e)
}

// Ensure starts the service if needed and returns once it is ready.
func (s *Service) Ensure(ctx context.Context) (Status, error) {
	return s.EnsureWith(ctx, StartOptions{})
}

// EnsureWith is Ensure with a profile, arguments and environment.
func (s *Service) EnsureWith(ctx context.Context, o StartOptions) (Status, error) {
	o.Wait = true
	e, err := s.event(EvStart, o)
	if err != nil {
		return s.Status(), err
	}
	e.ensure = true
	return s.call(ctx, e)
}

// Restart stops the service completely, then starts it (with profile).
func (s *Service) Restart(ctx context.Context, profile string, wait bool) (Status, error) {
	return s.RestartWith(ctx, StartOptions{Profile: profile, Wait: wait})
}

// RestartWith is Restart with every option: what o names replaces the
// instance's profile, arguments or environment, what it leaves out is
// kept (RestartIfDifferent means nothing here).
func (s *Service) RestartWith(ctx context.Context, o StartOptions) (Status, error) {
	o.RestartIfDifferent = false
	e, err := s.event(EvRestart, o)
	if err != nil {
		return s.Status(), err
	}
	return s.call(ctx, e)
}

// Stop stops the service and returns once its tree is verified empty.
func (s *Service) Stop(ctx context.Context) (Status, error) {
	return s.call(ctx, event{kind: EvStop, wait: waitStopped})
}

// Shutdown stops the service for good: later starts fail with ErrShutdown.
func (s *Service) Shutdown(ctx context.Context) (Status, error) {
	st, err := s.call(ctx, event{kind: EvShutdown, wait: waitStopped})
	// The stop cancelled the probes; those in flight end their own trees.
	s.probesDone(ctx)
	return st, err
}

// Status returns the snapshot published after the last step; it never
// waits for the owner goroutine.
func (s *Service) Status() Status { return s.snap.Load().status }

// Tree returns the current instance's tree, or nil.
func (s *Service) Tree() *proctree.Tree { return s.snap.Load().tree }

// OnLimit applies the configured action for a limit breach of instance
// (the watchdog may have frozen a growing tree). It answers once the action
// has begun: a stop or restart goes on in the background.
func (s *Service) OnLimit(ctx context.Context, instance string, action config.OnLimit, reason string) (Status, error) {
	k := map[config.OnLimit]EventKind{config.LimitFreeze: EvLimitFreeze, config.LimitStop: EvLimitStop,
		config.LimitRestart: EvLimitRestart}[action]
	if action != config.LimitFreeze && action != config.LimitStop && action != config.LimitRestart {
		k = EvLimitWarn
	}
	return s.call(ctx, event{kind: k, inst: instance, reason: reason})
}

// Configure replaces the configuration; it applies from the next start.
func (s *Service) Configure(cfg *config.Service) {
	s.call(context.Background(), event{kind: evConfigure, cfg: cfg})
}

// Close ends the owner goroutine; waiting requests are answered
// shutting_down. The service should be stopped first: if a tree is left
// (a stop still under way, or one that could not empty it), the goroutine
// stays to see that stop's end, so the tree is never forgotten unreleased,
// and Close returns without waiting for it.
func (s *Service) Close() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	if s.Status().State.HasTree() {
		return
	}
	<-s.done
}

// post hands a result to the owner goroutine, or drops it once the service
// is closed, so helper goroutines never block forever.
func (s *Service) post(e event) {
	select {
	case s.evs <- e:
	case <-s.done:
	}
}
