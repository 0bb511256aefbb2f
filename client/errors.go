package client

import "errors"

// Codes of Error.Code (docs/api.md has the table with the HTTP status of
// each). A failure of the supervised program is a 502 the program caused,
// not corral.
const (
	// CodeBadRequest: the request's input is wrong (unknown profile, bad
	// timeout, unknown action); nothing was done. HTTP 400.
	CodeBadRequest = "bad_request"
	// CodeBadConfig: a reload found the configuration file invalid or
	// unreadable; nothing changed. HTTP 400.
	CodeBadConfig = "bad_config"
	// CodeUnknownService: no service of that name in the configuration. HTTP 404.
	CodeUnknownService = "unknown_service"
	// CodeProfileMismatch: the running instance has another profile, other
	// arguments or another environment than the request names; restart it
	// with them, or pass RestartIfDifferent. HTTP 409.
	CodeProfileMismatch = "profile_mismatch"
	// CodeExternal: a server corral did not start serves the service;
	// corral will not touch it. HTTP 409.
	CodeExternal = "external"
	// CodeFrozen: the watchdog froze the service's tree; stop or restart it. HTTP 409.
	CodeFrozen = "frozen"
	// CodeStopIncomplete: a stop could not empty the tree; nothing starts
	// beside it until a stop succeeds. HTTP 409.
	CodeStopIncomplete = "stop_incomplete"
	// CodeLeftover: an earlier run's tree of the service survived the
	// daemon's reap; nothing starts beside it until a reap (retried at each
	// start) finds it gone. HTTP 409.
	CodeLeftover = "leftover"
	// CodeStopped: the service was stopped while the request waited. HTTP 409.
	CodeStopped = "stopped"
	// CodePortInUse: a port the service needs is held by a process corral
	// does not own (the message names it). HTTP 409.
	CodePortInUse = "port_in_use"
	// CodeNotReady: the readiness probe failed; the message has its target,
	// timeout and last error. HTTP 502.
	CodeNotReady = "not_ready"
	// CodeUnhealthy: the liveness probe failed its allowed number of times
	// in a row. HTTP 502.
	CodeUnhealthy = "unhealthy"
	// CodeExited: the program ended before it was ready and is not
	// restarted. HTTP 502.
	CodeExited = "exited"
	// CodeStartLimit: started too often within the restart window; failed
	// until it re-arms or is started by hand. HTTP 502.
	CodeStartLimit = "start_limit"
	// CodeSpawnFailed: the program could not be started (missing, not
	// executable, bad working directory, spawn not journaled). HTTP 502.
	CodeSpawnFailed = "spawn_failed"
	// CodeRunaway: the watchdog ended the service past a limit. HTTP 502.
	CodeRunaway = "runaway"
	// CodeShuttingDown: the daemon is shutting down and starts nothing. HTTP 503.
	CodeShuttingDown = "shutting_down"
	// CodeTimeout: the request's own timeout passed; the message says what
	// the service was waiting for. HTTP 504.
	CodeTimeout = "timeout"
	// CodeInternal: a failure of corral itself. HTTP 500.
	CodeInternal = "internal"
	// CodeNotFound: no route of that path (a client and daemon of
	// different versions, or a mistyped path). HTTP 404.
	CodeNotFound = "not_found"
	// CodeMethodNotAllowed: the path's routes take other methods (the
	// answer's Allow header lists them). HTTP 405.
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeDefinedInFile: Define or Remove of a service the configuration
	// file defines; change it in the file and reload. HTTP 409.
	CodeDefinedInFile = "defined_in_file"
)

// CodeOf returns the code of the daemon's error in err's chain, or "" when
// err is nil or did not come from the daemon (no daemon, a broken
// connection, the caller's own context).
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
