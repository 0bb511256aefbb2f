// Package testproc owns the fixture programs that only tests run as real
// processes (internal/fixture has the runtime and the demo's tree, which
// corral itself carries): the test binary re-runs itself with
// CORRAL_TESTPROC=NAME and Main dispatches to the registered fixture, as
// os/exec's own tests do. Fixtures model what supervised servers really do:
// shell wrappers, worker pools, setsid double-forks, respawners, processes
// that ignore SIGTERM, fork storms.
//
// It also holds observers that read /proc directly, independently of the
// code under test, to count what a tree left behind.
package testproc
