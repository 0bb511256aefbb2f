// Package service owns the lifecycle of one supervised service: its state
// (a state × event table, see state.go), its current instance (a proctree
// Tree), readiness and health probes, the port preflight, and restarts
// decided by the restart policy.
//
// One goroutine owns each service's state. Every request (start, stop,
// restart, ensure, status, reconfigure) is a message with a reply channel,
// so concurrent callers coalesce: any number of ensures while a service
// starts lead to exactly one instance.
package service
