// Package api owns the daemon's HTTP/JSON routes (docs/api.md): listing and
// inspecting services, start/stop/restart/ensure, logs and the event stream
// (newline-delimited JSON, optionally followed), reload and shutdown. It
// translates requests into supervisor calls and errors into status codes;
// it holds no state of its own.
package api
