// Package demo owns `corral demo`: it supervises a built-in WebUI-like
// process tree (the same fixtures the tests use), shows what a naive
// kill-one-PID launcher leaves behind, then stops the tree with proctree and
// verifies by an independent scan of the process table that nothing is left.
package demo
