package service

import (
	"errors"
	"fmt"
)

// Code is the machine-readable kind of a service error. The API sends it
// as "code" beside the message; docs/api.md lists them.
type Code string

const (
	CodeBadRequest      Code = "bad_request"      // the request's input is wrong; nothing was done
	CodeShuttingDown    Code = "shutting_down"    // corral is shutting down and starts nothing
	CodeNotReady        Code = "not_ready"        // the readiness probe failed (its target, timeout and last error)
	CodeUnhealthy       Code = "unhealthy"        // the liveness probe failed `failures` times in a row
	CodeExited          Code = "exited"           // the program ended before it was ready, and is not restarted
	CodeStartLimit      Code = "start_limit"      // started too often within the window; failed until re-armed
	CodePortInUse       Code = "port_in_use"      // a port the service needs is held by a process corral does not own
	CodeSpawnFailed     Code = "spawn_failed"     // the program could not be started (missing, not executable, bad dir)
	CodeStopIncomplete  Code = "stop_incomplete"  // a stop could not empty the tree; nothing starts beside it
	CodeLeftover        Code = "leftover"         // an earlier run's tree of it survived a reap; nothing starts beside it
	CodeProfileMismatch Code = "profile_mismatch" // the running instance has another profile
	CodeExternal        Code = "external"         // a server corral did not start serves it; corral will not touch it
	CodeStopped         Code = "stopped"          // it was stopped while the request waited
	CodeFrozen          Code = "frozen"           // the watchdog froze its tree
	CodeRunaway         Code = "runaway"          // the watchdog stopped it past a limit
	CodeTimeout         Code = "timeout"          // the request's own deadline passed; says what it waited for
	CodeInternal        Code = "internal"         // corral itself failed (e.g. reading the socket table)
)

// ErrBadRequest marks a request refused for its input; nothing was done.
var ErrBadRequest = errors.New("service: bad request")

// ErrShutdown is returned for starts after Shutdown.
var ErrShutdown = errors.New("service: corral is shutting down")

// Error is a failure of a request or of a service, with its code. The
// message says what happened to which service; Err, when set, is what
// errors.Is matches (ErrBadRequest, ErrShutdown, a context error).
type Error struct {
	Code    Code   `json:"code"`
	Service string `json:"service"`
	Msg     string `json:"message"`
	Err     error  `json:"-"`
}

func (e *Error) Error() string { return fmt.Sprintf("service %s: %s", e.Service, e.Msg) }

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the code of the first *Error in err's chain, or "".
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, ErrShutdown) {
		return CodeShuttingDown
	}
	if errors.Is(err, ErrBadRequest) {
		return CodeBadRequest
	}
	return ""
}

func newErr(service string, code Code, format string, args ...any) *Error {
	e := &Error{Code: code, Service: service, Msg: fmt.Sprintf(format, args...)}
	switch code {
	case CodeBadRequest:
		e.Err = ErrBadRequest
	case CodeShuttingDown:
		e.Err = ErrShutdown
	}
	return e
}
