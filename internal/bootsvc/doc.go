// Package bootsvc owns starting corral's daemon at login or boot through the
// operating system's own service manager: a systemd unit on Linux, a launchd
// agent or daemon on macOS, a Task Scheduler logon task or a Windows service
// on Windows.
//
// What the manager is given is a pure function of a Spec (SystemdUnit,
// LaunchdPlist, TaskXML), testable on every OS. Installing, uninstalling
// and querying are Plans: the files to write or remove and the manager's
// commands to run, built from the Spec and applied (or, for --dry-run,
// printed) by Apply. Which manager applies here is chosen by file suffix
// (Native).
//
// The manager only starts and stops the daemon; containment stays the
// daemon's. Each definition asks the manager to stop the daemon with its
// stop signal alone and to wait longer than the daemon's verified shutdown
// can take, so that the shutdown, not the manager, stops the services: see
// docs/boot.md.
package bootsvc
