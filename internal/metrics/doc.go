// Package metrics owns corral's Prometheus metrics: per service its state,
// starts, restarts by reason, tree size, memory, CPU and GPU memory, the
// outcome of its last stop, runaways, leaks and probe latency; and the
// daemon's own memory and goroutines. Figures of the trees are read at
// each scrape from the supervisor's status (nothing is kept twice);
// what only happens in events (a restart's reason, a runaway, a leak) is
// counted as the events are emitted.
package metrics
