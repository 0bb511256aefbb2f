// Package client is the public Go client of corral's control API: HTTP/JSON
// over the daemon's unix socket. The types here are the wire contract
// (docs/api.md describes the same routes). A failure the daemon answers
// is an *Error whose Code (CodeOf) is one of the Code* constants; a failure
// to reach it is ErrNoDaemon, ErrPermission, ErrUntrusted or
// ErrNotAnswering (wrapped). Before any request, each connection is
// checked to be served by the expected user (see Client), and every call
// is bounded (see docs/api.md, Client and transport).
package client
