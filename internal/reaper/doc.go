// Package reaper owns corral's role as a child subreaper on Linux: orphans
// of a contained tree are re-parented to corral instead of to init (which,
// in containers and some VMs, never reaps them), and reaper collects their
// exit statuses.
//
// It reaps selectively. A zombie child is reaped only when a registered
// claim says it belongs to a contained tree; corral's direct children are
// never claimed, so exec.Cmd.Wait always gets its own child's status. A
// blanket wait4(-1) would steal those statuses.
//
// On other systems EnableSubreaper returns errors.ErrUnsupported and Reap
// does nothing.
package reaper
