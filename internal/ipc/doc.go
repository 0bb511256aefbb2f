// Package ipc owns the daemon's control endpoint: a unix socket in the state
// directory that only the owner can open (the directory is 0700 and the
// socket 0600). A socket left by a dead daemon is replaced; one that still
// answers is never taken over. Keep makes the socket again if it is deleted
// or replaced while the daemon runs. PeerOf says who serves a connection,
// from the kernel, and ExpectedServer who should: the client believes no
// one else.
package ipc
