// Package statedir owns the trust corral places in its state directory: the
// directory that holds the daemon's lock, journal, socket and logs. A state
// directory another user could write to (or swap for a symlink) lets that
// user steer a root daemon's writes, or stand in for the daemon, so it is
// refused as ssh's StrictModes refuses a writable home; and every file in it
// is opened without following a symlink.
package statedir
