// Package ipc owns the daemon's control endpoint: a unix socket in the state
// directory that only the owner can open (the directory is 0700 and the
// socket 0600). A socket left by a dead daemon is replaced; one that still
// answers is never taken over.
package ipc
