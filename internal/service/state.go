package service

import "fmt"

// State is where a service is in its lifecycle.
type State string

const (
	Stopped   State = "stopped"   // no instance; nothing wanted
	Starting  State = "starting"  // instance running, not yet ready
	Ready     State = "ready"     // instance running and ready
	Unhealthy State = "unhealthy" // ready, but the health probe fails (below the limit)
	Stopping  State = "stopping"  // the instance's tree is being stopped
	Backoff   State = "backoff"   // waiting to restart after a failure
	Failed    State = "failed"    // gave up (start limit, refused start); re-arms later
	External  State = "external"  // a server corral did not start answers for it
)

// Event is what happens to a service.
type Event string

const (
	EvStart      Event = "start"       // a start is wanted (user, dependency, timer)
	EvStop       Event = "stop"        // a stop is wanted
	EvReady      Event = "ready"       // the readiness probe passed
	EvNotReady   Event = "not-ready"   // the readiness probe timed out
	EvHealthFail Event = "health-fail" // one liveness probe failed
	EvHealthOK   Event = "health-ok"   // a liveness probe passed
	EvHealthDown Event = "health-down" // liveness failed `failures` times in a row
	EvExited     Event = "exited"      // the instance ended on its own
	EvStopped    Event = "stopped"     // the tree is verified empty after a requested stop
	EvRetry      Event = "retry"       // after a failure: the policy restarts after a delay
	EvGiveUp     Event = "give-up"     // after a failure: the start limit is reached
	EvStay       Event = "stay"        // after an exit: the policy does not restart
	EvRefused    Event = "refused"     // a start could not happen (port held, spawn error)
	EvExternal   Event = "external"    // a healthy server corral did not start answers
	EvStopAgain  Event = "stop-again"  // a stop is retried on a tree a failed stop left
)

// table is the whole lifecycle. A pair missing from it is an event that
// cannot happen in that state; the owner goroutine treats it as a bug and
// logs it rather than guess.
var table = map[State]map[Event]State{
	Stopped: {
		EvStart: Starting, EvStop: Stopped, EvRefused: Stopped, EvExternal: External,
	},
	Starting: {
		EvStart: Starting, EvReady: Ready, EvNotReady: Stopping, EvExited: Stopping, EvStop: Stopping,
	},
	Ready: {
		EvStart: Ready, EvHealthOK: Ready, EvHealthFail: Unhealthy, EvHealthDown: Stopping,
		EvExited: Stopping, EvStop: Stopping,
	},
	Unhealthy: {
		EvStart: Unhealthy, EvHealthOK: Ready, EvHealthFail: Unhealthy, EvHealthDown: Stopping,
		EvExited: Stopping, EvStop: Stopping,
	},
	Stopping: {
		// A start while stopping is queued and applied after EvStopped.
		EvStart: Stopping, EvStop: Stopping, EvExited: Stopping,
		EvStopped: Stopped, EvRetry: Backoff, EvGiveUp: Failed, EvStay: Stopped,
	},
	Backoff: {
		EvStart: Starting, EvStop: Stopped, EvRefused: Failed,
	},
	Failed: {
		EvStart: Starting, EvStop: Stopped, EvRefused: Failed, EvExternal: External,
		EvStopAgain: Stopping,
	},
	External: {
		EvStart: External, EvStop: Stopped, EvExternal: External,
	},
}

// Next returns the state after e in s, or an error if e cannot happen in s.
func Next(s State, e Event) (State, error) {
	if n, ok := table[s][e]; ok {
		return n, nil
	}
	return s, fmt.Errorf("service: event %s cannot happen in state %s", e, s)
}

// Running reports whether the state has a live instance.
func (s State) Running() bool { return s == Starting || s == Ready || s == Unhealthy }
