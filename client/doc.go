// Package client is the public Go client of corral's control API: HTTP/JSON
// over the daemon's unix socket. The types here are the wire contract
// (docs/api.md describes the same routes). A failure the daemon answers
// is an *Error whose Code (CodeOf) is one of the Code* constants.
package client
