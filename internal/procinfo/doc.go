// Package procinfo owns reading the operating system's process table: one
// process's vital fields (parent, process group, session, state, start time,
// resident memory), its command line, whether it carries a corral instance
// marker in its environment, and an identity that survives PID reuse.
//
// It reads; it never signals. Everything that decides membership or kills
// lives in proctree, which builds on these snapshots.
package procinfo
