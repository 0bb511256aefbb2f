// Package journal owns corral's record of what happened: spawns, readiness,
// exits, signals, kills, restarts, failures. Today it is an in-memory ring
// with live subscribers behind `corral events` and the API's event stream;
// the append-only file written before every exec (crash safety) builds on
// the same Event type.
package journal
