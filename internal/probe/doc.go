// Package probe owns checking whether a service is ready or alive: an HTTP
// request answered 2xx (optionally with a body matching a pattern), a TCP
// connection accepted, a command exiting 0 (itself run contained), or a line
// of the service's output matching a pattern.
package probe
