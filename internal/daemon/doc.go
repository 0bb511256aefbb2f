// Package daemon owns `corral daemon`: one daemon per state directory
// (enforced with a lock file), the configuration file it serves, the
// supervisor, the control socket, and the signals it answers (SIGHUP
// reloads; SIGTERM and SIGINT run the verified shutdown).
package daemon
