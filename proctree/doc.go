// Package proctree starts a command so that it and every process it ever
// spawns form one contained tree, and stops that tree completely.
//
// A Tree is created by Start. Its members are every process in its container:
// on Linux with a writable cgroup v2 hierarchy, a leaf cgroup the leader is
// cloned into (CLONE_INTO_CGROUP, so there is no window in which a child can
// escape); elsewhere on Linux and on macOS, the leader's process group, its
// descendants, and every process carrying the tree's instance marker
// (CORRAL_INSTANCE) in its environment, with the caller as child subreaper so
// that double-forked daemons stay found. Windows uses a Job Object the
// leader is assigned to before it runs, and gives each tree a hidden console
// of its own, so that a stop can send every member a console control event.
//
// On Windows, a program that imports proctree is also the helper that
// delivers those events: started with PROCTREE_CONSOLE_CTRL set, it attaches
// to a tree's console, generates the event and exits before main runs.
//
// Stop signals every member, waits for the grace period, kills whatever is
// left with the strongest mechanism available (cgroup.kill, or freeze with
// SIGSTOP then SIGKILL until a rescan finds nothing), and returns only when
// the container is verified empty. Nothing outside the tree is ever
// signalled: every signal goes through a pidfd whose process was verified to
// be a member, or by process group only when every process of that group is
// a stopped member.
//
// The Tree owns its command's wait: after Start, do not call cmd.Wait; wait
// on Tree.Exited or Tree.Done and read Tree.ExitState. Containment is
// chosen by Options alone (Auto: the strongest that works here); proctree
// reads no setting from the environment.
//
// Output: proctree hands the leader *os.File pipes for any non-file Stdout,
// Stderr or Stdin and copies them itself, so a surviving descendant that
// holds the pipe can never delay the leader's exit status or Stop.
package proctree
