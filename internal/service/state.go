package service

import (
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/pidslimit"
	"github.com/corral-sh/corral/internal/restart"
	"github.com/corral-sh/corral/proctree"
)

// State is where a service is in its lifecycle. Every state a service can
// be in is one of these; what an instance or a pending start means in a
// state is said here, not inferred from which fields happen to be set.
type State string

const (
	Stopped    State = "stopped"     // no instance; nothing wanted
	Checking   State = "checking"    // a start is wanted; its ports are checked before anything is spawned
	Starting   State = "starting"    // an instance runs; its readiness probe has not passed yet
	Ready      State = "ready"       // an instance runs and passed its readiness probe
	Unhealthy  State = "unhealthy"   // ready, but its liveness probe fails (below the limit)
	Handover   State = "handover"    // the main process exited 0 and handed over to a successor in its tree, whose readiness is awaited
	Frozen     State = "frozen"      // the watchdog froze the tree (on_limit = "freeze"); probes paused
	Stopping   State = "stopping"    // a requested stop: the tree is being stopped; then stopped
	Restarting State = "restarting"  // a requested restart: the old tree is being stopped; then a new start
	Ending     State = "ending"      // the instance ended or failed: the rest of its tree is being stopped; then the restart policy decides
	Backoff    State = "backoff"     // waiting to restart after a failure
	Failed     State = "failed"      // gave up: start limit, refused start, or a failure the policy does not restart
	Done       State = "done"        // a run that exited successfully and that the policy does not restart (one-shot)
	StopFailed State = "stop-failed" // a stop could not empty the tree; it is kept, and nothing starts beside it
	External   State = "external"    // a healthy server corral did not start answers for the service
)

// States lists every state, in the order of the rows of actions.
var States = [numStates]State{Stopped, Checking, Starting, Ready, Unhealthy, Frozen, Stopping, Restarting, Ending, Backoff, Failed, Done, StopFailed, External, Handover}

const numStates = 15

// Running reports whether the state has a live instance that was not asked
// to go (the watchdog may act on it).
func (s State) Running() bool {
	return s == Starting || s == Ready || s == Unhealthy || s == Frozen || s == Handover
}

// HasTree reports whether the state holds an instance whose tree may have
// processes.
func (s State) HasTree() bool {
	switch s {
	case Starting, Ready, Unhealthy, Frozen, Stopping, Restarting, Ending, StopFailed, Handover:
		return true
	}
	return false
}

// EventKind is what happens to a service: a request from a caller, or the
// result of work the owner goroutine handed out.
type EventKind int

const (
	// Requests.
	EvStart        EventKind = iota // start or ensure (profile; wait for running or ready)
	EvRestart                       // stop completely, then start
	EvStop                          // stop; reply once the tree is empty
	EvShutdown                      // stop for good: later starts are refused
	EvLimitFreeze                   // the watchdog: freeze the tree and keep it
	EvLimitStop                     // the watchdog: stop the (frozen) tree
	EvLimitRestart                  // the watchdog: end the instance; the policy restarts it
	EvLimitWarn                     // the watchdog: let it run (thaw what it froze to look)
	// Results.
	EvChecked   // the preflight found the ports free: spawn
	EvFoundExt  // the preflight found a healthy server corral did not start
	EvRefused   // the start could not happen (port held, spawn error)
	EvSpawned   // the instance's leader runs, contained
	EvReady     // the readiness probe passed
	EvNotReady  // the readiness probe gave up
	EvHealthOK  // a liveness probe passed
	EvHealthBad // a liveness probe failed
	EvMain      // the main process is known (pidfile, or the launcher of a tree exited)
	EvExited    // the instance ended by its lifetime's rule
	EvEmpty     // a stop emptied the tree
	EvStopFail  // a stop could not empty the tree
	EvTimer     // the backoff or re-arm timer fired
	EvHandover  // the main process exited 0 and a successor in its tree takes over (lifetime = "handover")
	numEvents
)

var eventNames = [numEvents]string{
	"start", "restart", "stop", "shutdown", "limit-freeze", "limit-stop", "limit-restart", "limit-warn",
	"checked", "external", "refused", "spawned", "ready", "not-ready", "health-ok", "health-bad",
	"main", "exited", "empty", "stop-failed", "timer", "handover",
}

func (k EventKind) String() string {
	if k >= 0 && k < numEvents {
		return eventNames[k]
	}
	return "?"
}

// waitFor is what a request waits for before it is answered.
type waitFor int

const (
	waitNone    waitFor = iota // answer at once
	waitRunning                // until an instance runs (or is external)
	waitReady                  // until ready (or external)
	waitStopped                // until no instance is left
)

// event is one input of step. Requests carry their reply channel; results
// carry the instance (or generation) they are about, and step drops the
// stale ones before the table sees them.
type event struct {
	kind EventKind
	at   time.Time // stamped by the loop: step never reads a clock
	rand float64   // stamped by the loop, in [0, 1): the restart delay's jitter

	// requests
	reply chan reply
	wait  waitFor
	// launch is what the request asks the instance to run with: a profile
	// ("" names none: what runs is accepted, a restart keeps its own), and
	// arguments and environment, which count only when set (setArgs,
	// setVars), even empty: a request that leaves them out accepts or
	// keeps the instance's.
	launch
	setArgs, setVars bool
	ensure           bool // an ensure: a completed one-shot satisfies it
	// switchProfile: a start with another launch (profile, arguments,
	// environment) than the running instance's restarts it instead of
	// being refused.
	switchProfile bool
	reason        string // limit events: the breach
	cfg           *config.Service

	// results
	gen      int    // generation of the check or timer it answers
	inst     string // instance it is about
	watchGen int    // generation of the instance's probes and watchers
	err      error
	newInst  *instance // EvSpawned
	external []int     // EvFoundExt
	code     Code      // EvRefused
	pid      int       // EvMain, EvHandover: the (new) main process
	oldPID   int       // EvHandover: the main process that exited
	how      string    // EvMain, EvHandover: where the pid came from
	exit     *ExitInfo // EvExited
	lingers  int       // EvExited: members still alive when the leader exited
	// restartFile: EvExited of a main process that exited 0 after creating
	// the service's restart file (A1111's tmp/restart).
	restartFile bool
	report      *proctree.StopReport // EvEmpty, EvStopFail
	hookNote    string               // EvEmpty, EvStopFail: what the stop hook answered
}

// launch is what an instance runs with on top of its configuration: a
// profile, and arguments and environment of its own, given by the start
// that made it (an app's launcher choosing them at run time). Restarts by
// the policy, by the program and by a changed configuration keep them.
type launch struct {
	profile string
	args    []string // appended after the command and the profile's arguments
	vars    []string // KEY=VALUE sorted by name, layered over the service's env
}

// instance is one run of the service.
type instance struct {
	// cfg is the configuration it was started with: a reload applies from
	// the next start, never to a running instance's probes, lifetime or stop.
	cfg  *config.Service
	id   string
	tree *proctree.Tree
	launch
	argv    []string
	started time.Time
	// logSince is the last output line before the program ran: a ready
	// line printed at once must count.
	logSince uint64
	pids     *pidslimit.Group // kernel process limit, or nil
	main     int              // the main process: leader, pid from the pidfile, or a launcher's successor
	mainWhy  string           // how main was found ("" for the leader)
	prevMain int              // the main process before the last hand-over
	// ready: it passed its readiness probe (the restart policy's
	// "established").
	ready     bool
	healthBad int
	// watchGen numbers the probes and watchers of this instance; stopping
	// them bumps it, so a result already on its way is stale.
	watchGen int
	// end is why the instance ended (Ending): the policy decides on it.
	end *ending
}

// ending is why an instance is ending on its own.
type ending struct {
	code    Code   // exited, not_ready, unhealthy, runaway
	msg     string // the cause, as the user reads it
	exit    *ExitInfo
	lingers int // members alive when the leader exited 0 (a daemonizer)
	// programRestart: the program asked to be started again (its restart
	// file); no policy, no backoff, not a failure.
	programRestart bool
}

// pending is a start that is wanted but not yet spawned (Checking, and
// the start that follows Restarting, Backoff or a re-arm).
type pending struct {
	launch
	manual bool     // asked for by a user: bypasses the start limit
	env    []string // added by corral for this start only (SD_WEBUI_RESTARTING=1)
}

type waiter struct {
	want   waitFor
	ensure bool
	ch     chan reply
}

// machine is the whole state of one service. step is its only writer; the
// owner goroutine executes the effects step returns.
type machine struct {
	name  string
	cfg   *config.Service
	state State
	// reason explains the state; cause is set when the state is a failure
	// (what a waiting request is answered with).
	reason string
	cause  *Error
	since  time.Time
	inst   *instance
	next   pending // the start Checking checks, or Restarting/Backoff/Failed will make
	// stopCause is why a stop that nobody asked for is under way (the
	// watchdog's): Stopping ends in stopped with it as the cause.
	stopCause *Error
	// gen numbers the state entered last: a check or timer issued in one
	// state is stale in any later one.
	gen       int
	hist      restart.History
	restarts  int
	starts    int
	lastExit  *ExitInfo
	lastStop  *proctree.StopReport
	external  []int
	nextStart time.Time
	// shutdown refuses every later start; it is not a state because it
	// outlives them all (the service stops, then stays stopped for good).
	shutdown bool
	waiters  []waiter

	fx []effect // effects of the step under way
}

// effect is work for the owner goroutine. step only describes it.
type effect interface{ isEffect() }

type (
	fxPreflight struct { // check ports outside the loop; posts EvChecked, EvFoundExt or EvRefused
		gen     int
		profile string
	}
	fxSpawn struct { // spawn now, in the loop; yields EvSpawned or EvRefused
		gen    int
		next   pending
		argv   []string
		reason string
	}
	fxWatchReady  struct{ inst *instance } // run the readiness probe; posts EvReady or EvNotReady
	fxWatchHealth struct{ inst *instance } // run the liveness probe; posts EvHealthOK/EvHealthBad
	fxStopWatch   struct{ inst *instance } // end the instance's probes and watchers
	fxStopTree    struct {                 // stop the tree outside the loop; posts EvEmpty or EvStopFail
		inst *instance
		kill bool // frozen, or past a limit: kill at once, no hook, no grace
	}
	fxFreeze     struct{ inst *instance }
	fxThaw       struct{ inst *instance }
	fxRelease    struct{ inst *instance } // the tree is empty: forget it (tracking, kernel limit group)
	fxFollowMain struct {                 // watch a main process that is not our child; posts EvHandover or EvExited
		inst *instance
		pid  int
	}
	fxTimer struct {
		gen int
		d   time.Duration
	}
	fxCancelTimer struct{}
	fxJournal     struct {
		kind   journal.Kind
		msg    string
		fields map[string]string
		inst   *instance // the instance it is about, if any
	}
	fxReply struct {
		ch  chan reply
		err error
	}
)

func (fxPreflight) isEffect()   {}
func (fxSpawn) isEffect()       {}
func (fxWatchReady) isEffect()  {}
func (fxWatchHealth) isEffect() {}
func (fxStopWatch) isEffect()   {}
func (fxStopTree) isEffect()    {}
func (fxFreeze) isEffect()      {}
func (fxThaw) isEffect()        {}
func (fxRelease) isEffect()     {}
func (fxFollowMain) isEffect()  {}
func (fxTimer) isEffect()       {}
func (fxCancelTimer) isEffect() {}
func (fxJournal) isEffect()     {}
func (fxReply) isEffect()       {}
