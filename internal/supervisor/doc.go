// Package supervisor owns the set of services a daemon runs: building them
// from a configuration, starting them in dependency order (`after`),
// applying a reloaded configuration (add, remove, restart what changed,
// leave the rest alone), and the verified shutdown that stops everything in
// reverse dependency order and then proves, by an independent scan, that no
// process of any instance it ever started is alive.
package supervisor
